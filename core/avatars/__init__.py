"""Using trained avatars: create (encoder + backbone once), animate (``drive`` only), export (3DGS PLY).

See ``docs/avatars.md`` for the commands, the avatar file and the motion ``.npz`` formats.
"""

from lca.avatars.file import AvatarFile, AvatarFileError, load_avatar, save_avatar

__all__ = ["AvatarFile", "AvatarFileError", "load_avatar", "save_avatar"]

"""Digest authentication for the tests' GStreamer RTSP servers (the camera and central's media
server): one user with the password given, allowed to construct and use the factory."""
from gi.repository import Gst, GstRtsp, GstRtspServer


def require_digest(auth, factory, user, password):
    """Makes `auth` (a GstRtspServer.RTSPAuth) ask for Digest and accept `user`."""
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", user)
    auth.add_digest(user, password, token)
    factory.add_role_from_structure(
        Gst.Structure.new_from_string(
            f"{user}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
    )

"""libipc for Python: one message API over every Unix IPC mechanism.

    import libipc

    with libipc.Channel("shm://telemetry", create=True) as ch:
        msg = ch.recv()              # bytes, whole message
        ch.send(b"ack")

The binding uses cffi in ABI mode: it loads the shared library at import
time and needs no compiler.  The library is found, in this order, at the
path in the environment variable LIBIPC_LIBRARY, in a build tree next to
this package (after ``make``: ``PYTHONPATH=python``), then by the dynamic
linker's usual search ("libipc.so.0").

Every call that may wait (send, recv, poll, accept) releases the GIL while
it waits.  Errors raise libipc.IPCError with ``.errno`` (a positive errno
number, as in the errno module) and ``.detail`` (the library's
ipc_last_error() text).

SPDX-License-Identifier: MIT
"""
import errno as _errno
import os as _os

from cffi import FFI as _FFI

__all__ = [
    "Channel", "Listener", "IPCError", "pair", "strerror",
    "POLLIN", "POLLOUT", "POLLERR", "POLLHUP",
    "CAP_RELIABLE", "CAP_ORDERED", "CAP_ZEROCOPY", "CAP_LISTEN",
    "CAP_PEERCLOSE", "CAP_CROSSHOST", "CAP_PUBSUB",
]

_CDEF = """
typedef struct ipc_channel ipc_channel;
typedef struct ipc_listener ipc_listener;
typedef struct ipc_pollitem {
    ipc_channel *channel;
    ipc_listener *listener;
    int fd;
    short events;
    short revents;
} ipc_pollitem;

int ipc_open(ipc_channel **out, const char *uri, int flags);
ssize_t ipc_send(ipc_channel *ch, const void *buf, size_t len, int flags);
ssize_t ipc_recv(ipc_channel *ch, void *buf, size_t cap, int flags);
int ipc_close(ipc_channel *ch);
int ipc_acquire(ipc_channel *ch, const void **buf, size_t *len, int flags);
int ipc_release(ipc_channel *ch);
int ipc_poll(ipc_pollitem *items, size_t n, int timeout_ms);
int ipc_fd(const ipc_channel *ch);
int ipc_listen(ipc_listener **out, const char *uri, int flags);
int ipc_accept(ipc_listener *l, ipc_channel **out, int flags);
int ipc_listener_fd(const ipc_listener *l);
int ipc_listener_close(ipc_listener *l);
int ipc_pair(ipc_channel **a, ipc_channel **b, const char *uri);
int ipc_set_timeout(ipc_channel *ch, int timeout_ms);
size_t ipc_max_msg(const ipc_channel *ch);
unsigned ipc_caps(const ipc_channel *ch);
const char *ipc_scheme(const ipc_channel *ch);
int ipc_subscribers(const ipc_channel *pub);
unsigned long long ipc_dropped(const ipc_channel *ch);
const char *ipc_strerror(int err);
const char *ipc_last_error(void);
"""

# Values of include/ipc/ipc.h (the public contract fixes them).
CREATE = 0x1
NONBLOCK = 0x2
PUBLISH = 0x4
SUBSCRIBE = 0x8
POLLIN = 0x1
POLLOUT = 0x4
POLLERR = 0x8
POLLHUP = 0x10
CAP_RELIABLE = 0x01
CAP_ORDERED = 0x02
CAP_ZEROCOPY = 0x04
CAP_LISTEN = 0x08
CAP_PEERCLOSE = 0x10
CAP_CROSSHOST = 0x20
CAP_PUBSUB = 0x40

_ffi = _FFI()
_ffi.cdef(_CDEF)


def _candidates():
    env = _os.environ.get("LIBIPC_LIBRARY")
    if env:
        yield env
        return
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(_os.path.dirname(here))
    for build in ("build", "build-asan", "build-tsan"):
        yield _os.path.join(root, build, "src", "libipc.so")
    yield "libipc.so.0"
    yield "libipc.so"


def _load():
    tried = []
    for path in _candidates():
        if _os.sep in path and not _os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return _ffi.dlopen(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("libipc: cannot load the shared library; tried: "
                      + "; ".join(tried)
                      + ". Build it with 'make' or set LIBIPC_LIBRARY.")


_lib = _load()


class IPCError(OSError):
    """A libipc call failed.

    .errno is the positive errno number (compare with errno.EPIPE, ...),
    .detail the library's sentence on what failed and why, .strerror the
    short text of the error code.
    """

    def __init__(self, err, detail):
        super().__init__(err, strerror(-err))
        self.detail = detail

    def __str__(self):
        return "[Errno %d] %s: %s" % (self.errno, self.strerror, self.detail)


def strerror(err):
    """Text of an error code as the C library returns it (negative)."""
    return _ffi.string(_lib.ipc_strerror(int(err))).decode("utf-8",
                                                           "replace")


def _check(r):
    if r < 0:
        detail = _ffi.string(_lib.ipc_last_error()).decode("utf-8",
                                                           "replace")
        raise IPCError(-int(r), detail)
    return r


def _uri(uri):
    if isinstance(uri, str):
        return uri.encode("utf-8")
    if isinstance(uri, (bytes, bytearray)):
        return bytes(uri)
    raise TypeError("uri must be str or bytes, not %s" % type(uri).__name__)


def _ms(timeout):
    """None: forever; seconds (float) to whole milliseconds."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be None or >= 0")
    return int(timeout * 1000 + 0.999)


class Channel:
    """One end of a libipc channel: whole messages in both directions.

    Channel(uri, create=False, nonblock=False, publish=False,
            subscribe=False, timeout=None)

    create: make the endpoint (IPC_CREATE).  nonblock: every call raises
    IPCError(EAGAIN) instead of waiting.  timeout: seconds for blocking
    calls (None: forever), see ipc_set_timeout().
    """

    __slots__ = ("_ch", "_uri", "__weakref__")

    def __init__(self, uri=None, create=False, nonblock=False,
                 publish=False, subscribe=False, timeout=None, _raw=None):
        self._ch = _ffi.NULL
        if _raw is not None:
            self._ch = _raw
            self._uri = uri
        else:
            flags = ((CREATE if create else 0) | (NONBLOCK if nonblock else 0)
                     | (PUBLISH if publish else 0)
                     | (SUBSCRIBE if subscribe else 0))
            out = _ffi.new("ipc_channel **")
            _check(_lib.ipc_open(out, _uri(uri), flags))
            self._ch = out[0]
            self._uri = uri
        if timeout is not None:
            self.settimeout(timeout)

    def _h(self):
        if self._ch == _ffi.NULL:
            raise ValueError("I/O operation on a closed libipc channel")
        return self._ch

    def send(self, data, nonblock=False):
        """Send data (bytes-like) as one message; returns its length."""
        buf = _ffi.from_buffer(data)
        return _check(_lib.ipc_send(self._h(), buf, len(buf),
                                    NONBLOCK if nonblock else 0))

    def recv(self, nonblock=False):
        """Receive the next whole message as bytes (any size up to
        max_msg).  Raises IPCError(EPIPE) once the peer closed and every
        message it sent was received."""
        ch = self._h()
        pbuf = _ffi.new("const void **")
        plen = _ffi.new("size_t *")
        _check(_lib.ipc_acquire(ch, pbuf, plen,
                                NONBLOCK if nonblock else 0))
        try:
            return bytes(_ffi.buffer(pbuf[0], plen[0]))
        finally:
            _lib.ipc_release(ch)

    def recv_into(self, buffer, nonblock=False):
        """Receive the next message into a writable buffer; returns its
        length.  IPCError(EMSGSIZE) if it does not fit (it stays queued)."""
        buf = _ffi.from_buffer(buffer, require_writable=True)
        return _check(_lib.ipc_recv(self._h(), buf, len(buf),
                                    NONBLOCK if nonblock else 0))

    def poll(self, timeout=None, events=POLLIN):
        """Wait until the channel is ready; returns the ready POLL* bits
        (0 on timeout).  timeout in seconds, None forever."""
        item = _ffi.new("ipc_pollitem *")
        item.channel = self._h()
        item.listener = _ffi.NULL
        item.fd = -1
        item.events = events
        _check(_lib.ipc_poll(item, 1, _ms(timeout)))
        return item.revents

    def fileno(self):
        """A descriptor readable whenever recv() would not block: for
        selectors, asyncio's add_reader, ...  It belongs to the channel."""
        return _check(_lib.ipc_fd(self._h()))

    def settimeout(self, timeout):
        """Seconds for blocking calls; None waits forever."""
        _check(_lib.ipc_set_timeout(self._h(), _ms(timeout)))

    @property
    def max_msg(self):
        return int(_lib.ipc_max_msg(self._h()))

    @property
    def caps(self):
        return int(_lib.ipc_caps(self._h()))

    @property
    def subscribers(self):
        """A publisher's current number of subscribers (docs/pubsub.md)."""
        return _check(_lib.ipc_subscribers(self._h()))

    @property
    def dropped(self):
        """Messages lost so far (slow=drop, or sent to nobody)."""
        return int(_lib.ipc_dropped(self._h()))

    @property
    def scheme(self):
        return _ffi.string(_lib.ipc_scheme(self._h())).decode()

    @property
    def uri(self):
        return self._uri

    @property
    def closed(self):
        return self._ch == _ffi.NULL

    def close(self):
        """Close the channel; closing twice is harmless."""
        ch, self._ch = self._ch, _ffi.NULL
        if ch != _ffi.NULL:
            _check(_lib.ipc_close(ch))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __iter__(self):
        """Messages until the peer closes."""
        while True:
            try:
                yield self.recv()
            except IPCError as e:
                if e.errno == _errno.EPIPE:
                    return
                raise

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<libipc.Channel %r %s>" % (self._uri, state)


class Listener:
    """Accepts many peers on one address (drivers with CAP_LISTEN).

    Listener(uri, nonblock=False); accept() returns a Channel per peer.
    """

    __slots__ = ("_l", "_uri", "__weakref__")

    def __init__(self, uri, nonblock=False):
        self._l = _ffi.NULL
        out = _ffi.new("ipc_listener **")
        _check(_lib.ipc_listen(out, _uri(uri), NONBLOCK if nonblock else 0))
        self._l = out[0]
        self._uri = uri

    def _h(self):
        if self._l == _ffi.NULL:
            raise ValueError("operation on a closed libipc listener")
        return self._l

    def accept(self, nonblock=False):
        out = _ffi.new("ipc_channel **")
        _check(_lib.ipc_accept(self._h(), out, NONBLOCK if nonblock else 0))
        return Channel(self._uri, _raw=out[0])

    def fileno(self):
        return _check(_lib.ipc_listener_fd(self._h()))

    def poll(self, timeout=None):
        item = _ffi.new("ipc_pollitem *")
        item.channel = _ffi.NULL
        item.listener = self._h()
        item.fd = -1
        item.events = POLLIN
        _check(_lib.ipc_poll(item, 1, _ms(timeout)))
        return item.revents

    def close(self):
        lst, self._l = self._l, _ffi.NULL
        if lst != _ffi.NULL:
            _check(_lib.ipc_listener_close(lst))

    @property
    def closed(self):
        return self._l == _ffi.NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<libipc.Listener %r %s>" % (self._uri, state)


def pair(uri):
    """Two connected channels in this process ("pipe:", "shm:",
    "unix+seqpacket:", ...), for os.fork()."""
    a = _ffi.new("ipc_channel **")
    b = _ffi.new("ipc_channel **")
    _check(_lib.ipc_pair(a, b, _uri(uri)))
    return Channel(uri, _raw=a[0]), Channel(uri, _raw=b[0])

"""pytest suite of the Python binding.

Run by `make test` through meson (python/meson.build) with Debian's
/usr/bin/python3; by hand after `make`:

    PYTHONPATH=python /usr/bin/python3 -m pytest python/tests

The C example programs (examples/producer, examples/consumer) are found in
LIBIPC_BUILD (default: the build/ tree beside python/).

SPDX-License-Identifier: MIT
"""
import asyncio
import errno
import os
import selectors
import signal
import subprocess
import threading
import time
import uuid

import pytest

import libipc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("LIBIPC_BUILD", os.path.join(ROOT, "build"))


def unique(prefix="py"):
    return "%s-%d-%s" % (prefix, os.getpid(), uuid.uuid4().hex[:10])


@pytest.fixture
def tmpsock(tmp_path):
    return "unix://%s" % (tmp_path / "s.sock")


# ------------------------------------------------------------- basics --

def test_shm_roundtrip_and_facts():
    uri = "shm://" + unique()
    with libipc.Channel(uri, create=True) as srv, libipc.Channel(uri) as cli:
        assert cli.send(b"hello") == 5
        assert srv.recv() == b"hello"
        assert srv.send(b"") == 0
        assert cli.recv() == b""
        assert srv.scheme == "shm"
        assert srv.caps & libipc.CAP_ZEROCOPY
        assert srv.max_msg >= 1 << 20
    assert srv.closed and cli.closed


@pytest.mark.parametrize("size", [0, 1, 4095, 65536, 1 << 20])
def test_sizes_over_unix(tmpsock, size):
    data = os.urandom(size)
    with libipc.Channel(tmpsock, create=True) as srv, \
            libipc.Channel(tmpsock) as cli:
        t = threading.Thread(target=cli.send, args=(data,))
        t.start()
        got = srv.recv()
        t.join()
        assert got == data


def test_bytes_like_inputs():
    a, b = libipc.pair("unix+seqpacket:")
    with a, b:
        a.send(bytearray(b"ba"))
        a.send(memoryview(b"xmvx")[1:3])
        assert b.recv() == b"ba"
        assert b.recv() == b"mv"
        buf = bytearray(16)
        a.send(b"into")
        assert b.recv_into(buf) == 4 and bytes(buf[:4]) == b"into"


def test_recv_into_too_small_keeps_message():
    a, b = libipc.pair("pipe:")
    with a, b:
        a.send(b"0123456789")
        with pytest.raises(libipc.IPCError) as ei:
            b.recv_into(bytearray(4))
        assert ei.value.errno == errno.EMSGSIZE
        assert b.recv() == b"0123456789"


# ------------------------------------------------------------- errors --

def test_errors_carry_errno_and_detail():
    with pytest.raises(libipc.IPCError) as ei:
        libipc.Channel("nosuch://x")
    assert ei.value.errno == errno.EPROTONOSUPPORT
    assert "nosuch" in ei.value.detail
    with pytest.raises(libipc.IPCError) as ei:
        libipc.Channel("shm://" + unique() + "?bogus=1", create=True)
    assert ei.value.errno == errno.EINVAL
    assert "bogus" in ei.value.detail
    with pytest.raises(libipc.IPCError) as ei:
        libipc.Channel("shm://" + unique())  # nobody created it
    assert ei.value.errno in (errno.ENOENT, errno.ECONNREFUSED)
    assert isinstance(ei.value, OSError)
    assert str(ei.value).startswith("[Errno %d]" % ei.value.errno)


def test_nonblock_and_timeout():
    a, b = libipc.pair("unix+seqpacket:")
    with a, b:
        with pytest.raises(libipc.IPCError) as ei:
            b.recv(nonblock=True)
        assert ei.value.errno == errno.EAGAIN
        b.settimeout(0.05)
        with pytest.raises(libipc.IPCError) as ei:
            b.recv()
        assert ei.value.errno == errno.ETIMEDOUT


def test_peer_close_is_epipe_and_iteration_ends():
    a, b = libipc.pair("unix+seqpacket:")
    a.send(b"1")
    a.send(b"2")
    a.close()
    assert list(b) == [b"1", b"2"]
    with pytest.raises(libipc.IPCError) as ei:
        b.recv()
    assert ei.value.errno == errno.EPIPE
    b.close()


def test_closed_channel_raises_valueerror():
    a, b = libipc.pair("pipe:")
    a.close()
    a.close()  # twice is harmless
    with pytest.raises(ValueError):
        a.send(b"x")
    b.close()


# ---------------------------------------------- poll, fileno, asyncio --

def test_poll_and_selectors():
    a, b = libipc.pair("shm:")
    with a, b:
        assert b.poll(0) == 0
        a.send(b"x")
        assert b.poll(5) & libipc.POLLIN
        sel = selectors.DefaultSelector()
        sel.register(b.fileno(), selectors.EVENT_READ)
        assert sel.select(5), "fileno() must be readable with a message"
        assert b.recv() == b"x"
        sel.close()


def test_asyncio_add_reader():
    async def main():
        a, b = libipc.pair("unix+seqpacket:")
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        def readable():
            if not got.done():
                got.set_result(b.recv(nonblock=True))

        loop.add_reader(b.fileno(), readable)
        loop.call_later(0.01, a.send, b"async")
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_reader(b.fileno())
            a.close()
            b.close()

    assert asyncio.run(main()) == b"async"


def test_gil_released_while_waiting():
    """A thread blocked in recv() must not stop other Python threads."""
    a, b = libipc.pair("unix+seqpacket:")
    counter = [0]
    done = threading.Event()

    def receiver():
        counter.append(b.recv())
        done.set()

    t = threading.Thread(target=receiver)
    t.start()
    # Pure-Python work in this thread progresses while the other waits.
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        counter[0] += 1
    assert not done.is_set()
    assert counter[0] > 1000
    a.send(b"wake")
    t.join(10)
    assert done.is_set() and counter[-1] == b"wake"
    a.close()
    b.close()


# ----------------------------------------------------------- listener --

def test_listener_many_clients(tmpsock):
    with libipc.Listener(tmpsock) as lst:
        clients = [libipc.Channel(tmpsock) for _ in range(3)]
        for i, c in enumerate(clients):
            c.send(b"client %d" % i)
        served = []
        for _ in clients:
            assert lst.poll(5) & libipc.POLLIN
            ch = lst.accept()
            msg = ch.recv()
            ch.send(msg.upper())
            served.append(ch)
        for i, c in enumerate(clients):
            assert c.recv() == b"CLIENT %d" % i
        for ch in served + clients:
            ch.close()


# ------------------------------------------- Python and C, two processes --

MAX_PAYLOAD = 2048


def make_message(i):
    """examples/producer.c's message i."""
    head = b"message %d " % i
    n = len(head) + (i * 131) % (MAX_PAYLOAD - 32)
    body = bytes(ord("a") + (i + j) % 26 for j in range(len(head), n))
    return head + body


def checksum(h, msg):
    """examples/producer.c's FNV-1a over the length and bytes."""
    n = len(msg)
    for i in range(4):
        h = ((h ^ ((n >> (8 * i)) & 0xFF)) * 1099511628211) % (1 << 64)
    for c in msg:
        h = ((h ^ c) * 1099511628211) % (1 << 64)
    return h


def open_retry(uri, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return libipc.Channel(uri)
        except libipc.IPCError as e:
            if e.errno not in (errno.ENOENT, errno.ECONNREFUSED) or \
                    time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def example(name):
    path = os.path.join(BUILD, "examples", name)
    if not os.access(path, os.X_OK):
        pytest.skip("examples/%s not built in %s (set LIBIPC_BUILD)"
                    % (name, BUILD))
    return path


@pytest.mark.parametrize("scheme", ["shm", "unix"])
def test_python_producer_c_consumer(scheme, tmp_path):
    uri = ("shm://" + unique() if scheme == "shm"
           else "unix://%s" % (tmp_path / "pc.sock"))
    consumer = subprocess.Popen([example("consumer"), uri],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        count = 2000
        h = 14695981039346656037
        total = 0
        with open_retry(uri) as ch:
            for i in range(count):
                msg = make_message(i)
                ch.send(msg)
                h = checksum(h, msg)
                total += len(msg)
            ch.send(b"")  # "done"
            out, err = consumer.communicate(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
    assert consumer.returncode == 0, err.decode()
    want = "consumer: %d messages, %d bytes, checksum %016x" % (count, total,
                                                                 h)
    assert out.decode().strip() == want


def test_c_producer_python_consumer(tmp_path):
    uri = "unix://%s" % (tmp_path / "cp.sock")
    with libipc.Channel(uri, create=True) as ch:
        producer = subprocess.Popen([example("producer"), uri, "500"],
                                    stdout=subprocess.PIPE)
        h = 14695981039346656037
        n = total = 0
        while True:
            msg = ch.recv()
            if not msg:
                break
            h = checksum(h, msg)
            n += 1
            total += len(msg)
        out, _ = producer.communicate(timeout=60)
    assert producer.returncode == 0
    assert out.decode().strip() == (
        "producer: %d messages, %d bytes, checksum %016x" % (n, total, h))
    assert n == 500


def test_fork_pair():
    a, b = libipc.pair("shm:")
    pid = os.fork()
    if pid == 0:  # child: echo one message, then exit without cleanup
        code = 1
        try:
            a.close()
            b.send(b.recv()[::-1])
            code = 0
        finally:
            os._exit(code)
    b.close()
    a.send(b"fork")
    assert a.recv() == b"krof"
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    a.close()


def test_publish_subscribe(tmpsock):
    pub = libipc.Channel(tmpsock, publish=True)
    assert pub.caps & libipc.CAP_PUBSUB
    pub.send(b"to nobody")
    assert pub.dropped == 1 and pub.subscribers == 0
    subs = [libipc.Channel(tmpsock, subscribe=True, timeout=20.0)
            for _ in range(2)]
    deadline = time.monotonic() + 20
    while pub.subscribers != 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pub.send(b"tick")
    for s in subs:
        assert s.recv() == b"tick"
        assert s.dropped == 0
    pub.close()
    for s in subs:
        with pytest.raises(libipc.IPCError) as e:
            s.recv()
        assert e.value.errno == errno.EPIPE
        s.close()

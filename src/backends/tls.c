/*
 * tls+tcp://HOST:PORT: TCP with TLS 1.3 (OpenSSL).  The connection, the
 * creator's one peer, listeners and the framing are tcp://'s
 * (src/core/tcpconn.c); this file is the layer: a TLS handshake once the
 * connection is up, then a byte layer (struct ipc_stream_io) that reads
 * and writes TLS records for the stream framing.  See docs/tls.md.
 *
 * OpenSSL's socket BIO writes with write(2), which raises SIGPIPE; the
 * BIO here sends with MSG_NOSIGNAL.  One SSL object serves the sending
 * and the receiving thread: every SSL call holds the channel's lock.
 *
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/tcpconn.h"

#define TLS_CHUNK 16384 /* one TLS record of plaintext */

static const char *const verify_choices[] = {"peer", "none", NULL};
enum { VERIFY_PEER, VERIFY_NONE };

static const struct ipc_optspec tls_opts[] = {
        IPC_STREAM_OPTS,
        {"cert", IPC_OPT_STR, 0, 0, NULL,
         "PEM certificate (chain) of this end; required to serve"},
        {"key", IPC_OPT_STR, 0, 0, NULL, "PEM private key of cert="},
        {"ca", IPC_OPT_STR, 0, 0, NULL,
         "PEM file or directory of trusted CAs (default: the system's)"},
        {"verify", IPC_OPT_ENUM, 0, 0, verify_choices,
         "peer (check the peer's certificate) or none"},
        {"sni", IPC_OPT_STR, 0, 0, NULL,
         "server name to send and to check (default: HOST)"},
        {NULL, 0, 0, 0, NULL, NULL},
};

struct tls_ch {
	struct ipc_tcpconn t; /* first: the core's TCP channel */
	SSL_CTX *ctx;
	SSL *ssl;
	pthread_mutex_t lk; /* every SSL call */
	int have_lk;
	char name[256]; /* the name (or address) the server must prove */
	int name_is_ip, send_sni;
	/* A record SSL_write could not push yet: its plaintext, which the
	 * retry must pass again (the stream counted it as taken). */
	unsigned char wbuf[TLS_CHUNK];
	size_t wlen;
	atomic_int wpend;
};

struct tls_listener {
	struct ipc_sock_listener s; /* first: the core's listener slots */
	SSL_CTX *ctx;
};

/* ------------------------------------------------------------ the BIO -- */

static BIO_METHOD *bio_meth;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int
bio_write(BIO *b, const char *buf, int len)
{
	int fd = (int)BIO_get_fd(b, NULL);
	ssize_t r = send(fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		BIO_set_retry_write(b);
	}
	return (int)r;
}

static int
bio_read(BIO *b, char *buf, int len)
{
	int fd = (int)BIO_get_fd(b, NULL);
	ssize_t r = recv(fd, buf, (size_t)len, MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		BIO_set_retry_read(b);
	}
	return (int)r;
}

static void
bio_init(void)
{
	const BIO_METHOD *sock = BIO_s_socket();
	BIO_METHOD *m =
	        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
	                             BIO_TYPE_DESCRIPTOR,
	                     "libipc socket");
	if (m == NULL) {
		return;
	}
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
	BIO_meth_set_create(m, BIO_meth_get_create(sock));
	BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
	BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
	bio_meth = m;
}

/* ------------------------------------------------------------ errors -- */

/* OpenSSL's reason for the last failure, or fallback. */
static const char *
ssl_reason(char *buf, size_t n, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0) {
		snprintf(buf, n, "%s", fallback);
	} else {
		ERR_error_string_n(e, buf, n);
		const char *r = ERR_reason_error_string(e);
		if (r != NULL) {
			snprintf(buf, n, "%s", r);
		}
	}
	ERR_clear_error();
	return buf;
}

/* ----------------------------------------------------------- contexts -- */

static int
load_ca(SSL_CTX *ctx, const char *ca, const char *uri)
{
	struct stat st;
	char why[256];
	int ok;

	if (ca == NULL) {
		return SSL_CTX_set_default_verify_paths(ctx) == 1
		               ? 0
		               : ipc__err(-EINVAL, uri,
		                          "the system's CA store: %s",
		                          ssl_reason(why, sizeof(why), "?"));
	}
	if (stat(ca, &st) < 0) {
		return ipc__errno(-errno, uri, "ca=%s", ca);
	}
	ok = S_ISDIR(st.st_mode)
	             ? SSL_CTX_load_verify_locations(ctx, NULL, ca)
	             : SSL_CTX_load_verify_locations(ctx, ca, NULL);
	if (ok != 1) {
		return ipc__err(
		        -EINVAL, uri, "ca=%s: cannot load: %s", ca,
		        ssl_reason(why, sizeof(why), "no certificate"));
	}
	return 0;
}

/* An SSL_CTX for one end: TLS 1.3 only, the certificate and the trust
 * the URI names. */
static int
make_ctx(SSL_CTX **out, const struct ipc_uri *u, int server)
{
	const char *cert = ipc__opt_str(u, "cert", NULL);
	const char *key = ipc__opt_str(u, "key", NULL);
	const char *ca = ipc__opt_str(u, "ca", NULL);
	int verify = (int)ipc__opt_num(
	        u, "verify", server && ca == NULL ? VERIFY_NONE : VERIFY_PEER);
	char why[256];
	SSL_CTX *ctx;
	int r = 0;

	pthread_once(&bio_once, bio_init);
	if (bio_meth == NULL) {
		return ipc__err(-ENOMEM, u->text, "OpenSSL: BIO_meth_new");
	}
	if (server && (cert == NULL || key == NULL)) {
		return ipc__err(-EINVAL, u->text,
		                "cert= and key= are required to serve TLS");
	}
	if ((cert == NULL) != (key == NULL)) {
		return ipc__err(-EINVAL, u->text,
		                "%s= without %s=", cert ? "cert" : "key",
		                cert ? "key" : "cert");
	}
	if (server && verify == VERIFY_PEER && ca == NULL &&
	    ipc__opt_isset(u, "verify")) {
		return ipc__err(
		        -EINVAL, u->text,
		        "verify=peer on the serving end needs ca= (the "
		        "CAs that sign client certificates)");
	}
	if (server && ipc__opt_isset(u, "sni")) {
		return ipc__err(-EINVAL, u->text,
		                "sni: only the connecting end sends a name");
	}
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		return ipc__err(-ENOMEM, u->text, "SSL_CTX_new: %s",
		                ssl_reason(why, sizeof(why), "?"));
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (cert != NULL &&
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		r = ipc__err(access(cert, R_OK) < 0 ? -ENOENT : -EINVAL,
		             u->text, "cert=%s: cannot load: %s", cert,
		             ssl_reason(why, sizeof(why), "?"));
	} else if (key != NULL && SSL_CTX_use_PrivateKey_file(
	                                  ctx, key, SSL_FILETYPE_PEM) != 1) {
		r = ipc__err(access(key, R_OK) < 0 ? -ENOENT : -EINVAL,
		             u->text, "key=%s: cannot load: %s", key,
		             ssl_reason(why, sizeof(why), "?"));
	} else if (key != NULL && SSL_CTX_check_private_key(ctx) != 1) {
		r = ipc__err(-EINVAL, u->text, "key=%s does not match cert=%s",
		             key, cert);
	} else if (verify == VERIFY_PEER) {
		r = load_ca(ctx, ca, u->text);
		SSL_CTX_set_verify(
		        ctx,
		        server ? SSL_VERIFY_PEER |
		                         SSL_VERIFY_FAIL_IF_NO_PEER_CERT
		               : SSL_VERIFY_PEER,
		        NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

/* ------------------------------------------------------------ the layer -- */

static int
tls_start(ipc_channel *ch, int fd, int is_server)
{
	struct tls_ch *p = ipc__priv(ch);
	char why[256];
	BIO *bio;
	int r = pthread_mutex_init(&p->lk, NULL);

	if (r != 0) {
		return ipc__errno(-r, ch->uri, "pthread_mutex_init");
	}
	p->have_lk = 1;
	p->ssl = SSL_new(p->ctx);
	bio = p->ssl != NULL ? BIO_new(bio_meth) : NULL;
	if (bio == NULL) {
		return ipc__err(-ENOMEM, ch->uri, "SSL_new: %s",
		                ssl_reason(why, sizeof(why), "out of memory"));
	}
	BIO_set_fd(bio, fd, BIO_NOCLOSE);
	SSL_set_bio(p->ssl, bio, bio);
	if (is_server) {
		SSL_set_accept_state(p->ssl);
		return 0;
	}
	SSL_set_connect_state(p->ssl);
	if (p->send_sni) {
		SSL_set_tlsext_host_name(p->ssl, p->name);
	}
	if (SSL_get_verify_mode(p->ssl) & SSL_VERIFY_PEER) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(p->ssl);
		int ok = p->name_is_ip
		                 ? X509_VERIFY_PARAM_set1_ip_asc(vp, p->name)
		                 : SSL_set1_host(p->ssl, p->name);
		if (ok != 1) {
			return ipc__err(
			        -EINVAL, ch->uri,
			        "cannot check the server's name \"%s\"",
			        p->name);
		}
	}
	return 0;
}

/* The handshake failed: say why, the certificate's fault first. */
static int
hs_error(struct tls_ch *p, ipc_channel *ch, int err)
{
	long vr = SSL_get_verify_result(p->ssl);
	char why[256];

	if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
	    vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		ERR_clear_error();
		return ipc__err(-EACCES, ch->uri,
		                "TLS: the server's certificate is not for %s "
		                "(wrong name)",
		                p->name);
	}
	if (vr != X509_V_OK) {
		ERR_clear_error();
		return ipc__err(-EACCES, ch->uri,
		                "TLS: the %s's certificate is not trusted: %s",
		                p->t.is_server ? "client" : "server",
		                X509_verify_cert_error_string(vr));
	}
	if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
		return ipc__err(
		        -ECONNRESET, ch->uri,
		        "TLS handshake: the peer closed the connection");
	}
	return ipc__err(-EPROTO, ch->uri, "TLS handshake failed: %s",
	                ssl_reason(why, sizeof(why), "?"));
}

static int
tls_step(ipc_channel *ch, short *events)
{
	struct tls_ch *p = ipc__priv(ch);
	int r, e;

	pthread_mutex_lock(&p->lk);
	ERR_clear_error();
	r = SSL_do_handshake(p->ssl);
	e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		r = -EAGAIN;
	} else if (e != SSL_ERROR_NONE) {
		r = hs_error(p, ch, e);
	} else {
		r = 0;
	}
	pthread_mutex_unlock(&p->lk);
	return r;
}

/* A TLS failure while reading: the peer's alert that it refused our
 * certificate (TLS 1.3 sends it after the handshake) is -EACCES. */
static ssize_t
read_error(void)
{
	int reason = ERR_GET_REASON(ERR_peek_last_error());

	ERR_clear_error();
	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		return -EACCES;
	}
	return -EPROTO;
}

static ssize_t
io_read(void *ctx, void *buf, size_t cap)
{
	struct tls_ch *p = ctx;
	int n, e;

	if (cap > INT32_MAX) {
		cap = INT32_MAX;
	}
	pthread_mutex_lock(&p->lk);
	ERR_clear_error();
	n = SSL_read(p->ssl, buf, (int)cap);
	e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, n);
	pthread_mutex_unlock(&p->lk);
	switch (e) {
	case SSL_ERROR_NONE:
		return n;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* close_notify, or the end without one */
	case SSL_ERROR_SYSCALL:
		return errno == 0 || errno == ECONNRESET ? 0 : -errno;
	default:
		return read_error();
	}
}

/* Push the record left pending; under lk.  0, -EAGAIN or -errno. */
static int
push_pending(struct tls_ch *p)
{
	if (!atomic_load(&p->wpend)) {
		return 0;
	}
	ERR_clear_error();
	int n = SSL_write(p->ssl, p->wbuf, (int)p->wlen);
	if (n > 0) {
		atomic_store(&p->wpend, 0);
		return 0;
	}
	int e = SSL_get_error(p->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		return -EAGAIN;
	}
	ERR_clear_error();
	atomic_store(&p->wpend, 0);
	return -EPIPE;
}

static ssize_t
io_writev(void *ctx, const struct iovec *v, int n)
{
	struct tls_ch *p = ctx;
	size_t k = 0;
	ssize_t r;

	pthread_mutex_lock(&p->lk);
	r = push_pending(p);
	if (r < 0) {
		goto out;
	}
	for (int i = 0; i < n && k < TLS_CHUNK; i++) {
		size_t c = v[i].iov_len < TLS_CHUNK - k ? v[i].iov_len
		                                        : TLS_CHUNK - k;
		memcpy(p->wbuf + k, v[i].iov_base, c);
		k += c;
	}
	if (k == 0) {
		r = 0;
		goto out;
	}
	ERR_clear_error();
	int w = SSL_write(p->ssl, p->wbuf, (int)k);
	if (w > 0) {
		r = w;
	} else {
		int e = SSL_get_error(p->ssl, w);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			/* Taken: the retry passes the same bytes again. */
			p->wlen = k;
			atomic_store(&p->wpend, 1);
			r = (ssize_t)k;
		} else {
			ERR_clear_error();
			r = e == SSL_ERROR_SYSCALL && errno != 0 ? -errno
			                                         : -EPIPE;
		}
	}
out:
	pthread_mutex_unlock(&p->lk);
	return r;
}

static int
io_pending(void *ctx)
{
	struct tls_ch *p = ctx;

	pthread_mutex_lock(&p->lk);
	int n = SSL_pending(p->ssl);
	pthread_mutex_unlock(&p->lk);
	return n > 0;
}

static int
io_wpending(void *ctx)
{
	struct tls_ch *p = ctx;
	return atomic_load(&p->wpend);
}

static int
io_flush(void *ctx)
{
	struct tls_ch *p = ctx;

	pthread_mutex_lock(&p->lk);
	int r = push_pending(p);
	pthread_mutex_unlock(&p->lk);
	return r;
}

static const struct ipc_stream_io tls_io = {
        .read = io_read,
        .writev = io_writev,
        .pending = io_pending,
        .wpending = io_wpending,
        .flush = io_flush,
};

static void *
tls_io_ctx(ipc_channel *ch)
{
	return ipc__priv(ch);
}

static void
tls_fini(ipc_channel *ch)
{
	struct tls_ch *p = ipc__priv(ch);

	if (p->ssl != NULL) {
		pthread_mutex_lock(&p->lk);
		ERR_clear_error();
		if (SSL_is_init_finished(p->ssl)) {
			(void)SSL_shutdown(p->ssl); /* close_notify, no wait */
		}
		SSL_free(p->ssl);
		p->ssl = NULL;
		ERR_clear_error();
		pthread_mutex_unlock(&p->lk);
	}
	if (p->have_lk) {
		pthread_mutex_destroy(&p->lk);
		p->have_lk = 0;
	}
}

static const struct ipc_tcp_layer tls_layer = {
        .start = tls_start,
        .step = tls_step,
        .io = &tls_io,
        .io_ctx = tls_io_ctx,
        .fini = tls_fini,
};

/* ------------------------------------------------------------- driver -- */

/* A failed open or accept: release the layer and the context. */
static void
unwind(ipc_channel *ch)
{
	struct tls_ch *p = ipc__priv(ch);

	tls_fini(ch);
	SSL_CTX_free(p->ctx);
	p->ctx = NULL;
}

static int
tls_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct tls_ch *p = ipc__priv(ch);
	const char *sni = ipc__opt_str(u, "sni", NULL);
	unsigned char ip[16];
	int r;

	ipc__tcp_prepare(ch, u, &tls_layer);
	snprintf(p->name, sizeof(p->name), "%s", sni ? sni : u->host);
	p->name_is_ip = sni == NULL && (inet_pton(AF_INET, u->host, ip) == 1 ||
	                                inet_pton(AF_INET6, u->host, ip) == 1);
	p->send_sni = !p->name_is_ip;
	r = make_ctx(&p->ctx, u, (flags & IPC_CREATE) != 0);
	if (r < 0) {
		return r;
	}
	r = ipc__tcp_open(ch, u, flags);
	if (r < 0) {
		unwind(ch);
	}
	return r;
}

static int
tls_close(ipc_channel *ch)
{
	struct tls_ch *p = ipc__priv(ch);
	int r = ipc__tcp_close(ch); /* runs tls_fini before the fd closes */

	SSL_CTX_free(p->ctx);
	return r;
}

static int
tls_listen(ipc_listener *l, const struct ipc_uri *u, int flags)
{
	struct tls_listener *tl = ipc__lpriv(l);
	int r = make_ctx(&tl->ctx, u, 1);

	if (r < 0) {
		return r;
	}
	r = ipc__tcp_listen(l, u, flags);
	if (r < 0) {
		SSL_CTX_free(tl->ctx);
	}
	return r;
}

static int
tls_accept(ipc_listener *l, ipc_channel *ch)
{
	struct tls_listener *tl = ipc__lpriv(l);
	struct tls_ch *p = ipc__priv(ch);
	int r;

	SSL_CTX_up_ref(tl->ctx);
	p->ctx = tl->ctx;
	r = ipc__tcp_accept_layer(l, ch, &tls_layer);
	if (r < 0) {
		unwind(ch);
	}
	return r;
}

static int
tls_listener_close(ipc_listener *l)
{
	struct tls_listener *tl = ipc__lpriv(l);

	SSL_CTX_free(tl->ctx);
	return ipc__sock_listener_close(l);
}

const struct ipc_driver ipc_driver_tls = {
        .scheme = "tls+tcp",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_LISTEN |
                IPC_CAP_PEERCLOSE | IPC_CAP_CROSSHOST | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_HOSTPORT,
        .opts = tls_opts,
        .priv_size = sizeof(struct tls_ch),
        .lpriv_size = sizeof(struct tls_listener),
        .open = tls_open,
        .send = ipc__tcp_send,
        .detach = ipc__sdrv_detach,
        .recv = ipc__tcp_recv,
        .close = tls_close,
        .pollfds = ipc__tcp_pollfds,
        .ready = ipc__tcp_ready,
        .fd = ipc__tcp_fd,
        .listen = tls_listen,
        .accept = tls_accept,
        .listener_fd = ipc__sock_listener_fd,
        .listener_close = tls_listener_close,
        .local_uri = ipc__tcp_local_uri,
        .listener_uri = ipc__sock_listener_uri,
};

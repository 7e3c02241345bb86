/*
 * The trust model: see trust.h and docs/security.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust.h"

/* One decimal id of a list: digits only (no sign, no octal, no hex). */
static int
parse_id(const char *s, size_t n, unsigned long *v)
{
	unsigned long x = 0;

	if (n == 0 || n > 10) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		x = x * 10 + (unsigned long)(s[i] - '0');
	}
	if (x >= (unsigned long)UINT32_MAX) { /* (uid_t)-1 is "none" */
		return -1;
	}
	*v = x;
	return 0;
}

static int
parse_list(const char *key, const char *val, unsigned long *ids, unsigned *n,
           int *any, const char *uri)
{
	const char *p = val;

	*n = 0;
	if (any != NULL && strcmp(val, "any") == 0) {
		*any = 1;
		return 0;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		unsigned long v;
		if (parse_id(p, len, &v) < 0) {
			return ipc__err(-EINVAL, uri,
			                "option %s: '%s' is not a list of "
			                "decimal ids%s",
			                key, val, any ? " or 'any'" : "");
		}
		if (*n == IPC_TRUST_MAXIDS) {
			return ipc__err(-EINVAL, uri,
			                "option %s: more than %d ids", key,
			                IPC_TRUST_MAXIDS);
		}
		ids[(*n)++] = v;
		if (comma == NULL) {
			return 0;
		}
		p = comma + 1;
	}
}

int
ipc__trust_parse(struct ipc_trust *t, const struct ipc_uri *u, int shared)
{
	const char *su = ipc__opt_str(u, "allow_uid", NULL);
	const char *sg = ipc__opt_str(u, "allow_gid", NULL);
	unsigned long ids[IPC_TRUST_MAXIDS];
	int any = 0, r;

	memset(t, 0, sizeof(*t));
	if (su != NULL) {
		r = parse_list("allow_uid", su, ids, &t->nuid, &any, u->text);
		if (r < 0) {
			return r;
		}
		for (unsigned i = 0; i < t->nuid; i++) {
			t->uid[i] = (uid_t)ids[i];
		}
	}
	if (sg != NULL) {
		r = parse_list("allow_gid", sg, ids, &t->ngid, NULL, u->text);
		if (r < 0) {
			return r;
		}
		for (unsigned i = 0; i < t->ngid; i++) {
			t->gid[i] = (gid_t)ids[i];
		}
	}
	t->given = su != NULL || sg != NULL;
	t->check = !any && (shared || t->given);
	return 0;
}

int
ipc__trust_check(const struct ipc_trust *t, const char *uri, const char *who,
                 const struct ipc_cred *c)
{
	if (!t->check) {
		return 0;
	}
	if (!c->known) {
		return ipc__err(-EACCES, uri,
		                "refused: the credentials of %s cannot be "
		                "known (allow anybody with allow_uid=any)",
		                who);
	}
	if (c->uid == 0 || c->uid == geteuid()) {
		return 0;
	}
	for (unsigned i = 0; i < t->nuid; i++) {
		if (t->uid[i] == c->uid) {
			return 0;
		}
	}
	for (unsigned i = 0; i < t->ngid; i++) {
		if (t->gid[i] == c->gid) {
			return 0;
		}
	}
	if (c->pid > 0) {
		return ipc__err(-EACCES, uri,
		                "refused: %s is uid %u, pid %ld (allow it "
		                "with allow_uid=%u)",
		                who, (unsigned)c->uid, (long)c->pid,
		                (unsigned)c->uid);
	}
	return ipc__err(-EACCES, uri,
	                "refused: %s is uid %u (allow it with allow_uid=%u)",
	                who, (unsigned)c->uid, (unsigned)c->uid);
}

int
ipc__cred_socket(int fd, struct ipc_cred *c, const char *uri)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	memset(c, 0, sizeof(*c)); /* nothing known unless the kernel says */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		return ipc__errno(-errno, uri, "SO_PEERCRED");
	}
	if (cr.uid == (uid_t)-1) {
		/* Not a connection-oriented peer: nothing is known. */
		memset(c, 0, sizeof(*c));
		return 0;
	}
	c->known = 1;
	c->pid = cr.pid;
	c->uid = cr.uid;
	c->gid = cr.gid;
	return 0;
}

int
ipc__cred_fd_owner(int fd, struct ipc_cred *c, const char *uri)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		return ipc__errno(-errno, uri, "fstat");
	}
	c->known = 1;
	c->pid = 0;
	c->uid = st.st_uid;
	c->gid = st.st_gid;
	return 0;
}

int
ipc__cred_pid(pid_t pid, struct ipc_cred *c)
{
	char path[64], line[256];
	unsigned long uid[4], gid[4];
	int have = 0;

	if (pid <= 0) {
		return -ESRCH;
	}
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return errno == ENOENT ? -ESRCH : -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &uid[0], &uid[1],
		           &uid[2], &uid[3]) == 4) {
			have |= 1;
		} else if (sscanf(line, "Gid: %lu %lu %lu %lu", &gid[0],
		                  &gid[1], &gid[2], &gid[3]) == 4) {
			have |= 2;
		}
	}
	fclose(f);
	if (have != 3) {
		return -ESRCH;
	}
	c->known = 1;
	c->pid = pid;
	c->uid = (uid_t)uid[1]; /* effective */
	c->gid = (gid_t)gid[1];
	return 0;
}

int
ipc__trust_path_shared(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		return 1;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(dir)) {
		return 1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (stat(dir, &st) < 0) {
		return 1;
	}
	return (st.st_mode & S_IWOTH) != 0;
}

int
ipc__cred_out(const struct ipc_cred *c, const char *uri, pid_t *pid,
              uid_t *uid, gid_t *gid)
{
	if (!c->known) {
		return ipc__err(-ENOTCONN, uri,
		                "ipc_peer_cred: no peer has arrived yet");
	}
	if (pid != NULL) {
		*pid = c->pid;
	}
	if (uid != NULL) {
		*uid = c->uid;
	}
	if (gid != NULL) {
		*gid = c->gid;
	}
	return 0;
}

void
ipc__cred_self(struct ipc_cred *c)
{
	c->known = 1;
	c->pid = getpid();
	c->uid = geteuid();
	c->gid = getegid();
}

/*
 * Publish/subscribe in the core (DESIGN.md 2b, docs/pubsub.md): the
 * options every pub/sub driver shares (slow=, history=).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>

#include "driver.h"

const char *const ipc__slow_choices[] = {"block", "drop", NULL};

int
ipc__pubsub_opts(const struct ipc_uri *u, int flags,
                 struct ipc_pubsub_opts *o)
{
	o->drop = (int)ipc__opt_num(u, "slow", 0) == 1;
	o->history = (unsigned)ipc__opt_num(u, "history", 0);
	if (!(flags & (IPC_PUBLISH | IPC_SUBSCRIBE)) &&
	    (ipc__opt_isset(u, "slow") || ipc__opt_isset(u, "history"))) {
		return ipc__err(-EINVAL, u->text,
		                "open: slow= and history= apply to "
		                "IPC_PUBLISH and IPC_SUBSCRIBE only");
	}
	return 0;
}

/*
 * Publish/subscribe through listeners (pubsub.c), for drivers with
 * IPC_CAP_PUBSUB and no native pub/sub (driver.h, the subscribers slot).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_PUBSUB_H
#define IPC_CORE_PUBSUB_H

#include "driver.h"

/* The layers a publisher's and a subscriber's channel run on. */
extern const struct ipc_driver ipc__pubsub_pub;
extern const struct ipc_driver ipc__pubsub_sub;

/* Open ch (made by the core on ipc__pubsub_pub or ipc__pubsub_sub, with
 * ch->uri the caller's URI) over the driver `real`, which the URI names.
 * flags has IPC_PUBLISH or IPC_SUBSCRIBE.  Failure rule as open(). */
int ipc__pubsub_open(ipc_channel *ch, const struct ipc_driver *real,
                     int flags);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef IPC_TOOLS_IPC_CAT_LIST_H
#define IPC_TOOLS_IPC_CAT_LIST_H

/* ipc-cat --list|--gc [DIR...]: argv[1] is the option.  Returns the exit
 * status. */
int ipc_cat_objects(int argc, char **argv);

#endif

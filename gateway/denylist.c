/*
 * denylist.c - the gateway's copy of the deny list.
 *
 * tapsettle keeps the deny list, with a change log, in its own LMDB
 * environment ([settle] path). A thread here looks at it once a second
 * through deny/'s reader (read only, short read transactions; the store may
 * not exist yet: the gateway never links settlement) and appends
 * the new changes to the pipeline, which answers validators' deny-list
 * requests and puts the version in every acknowledgement.
 */
#include "gateway/gateway.h"

#include "deny/deny.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_denylist {
	struct fp_pipeline *pipe;
	char path[512];
	pthread_t thread;
	_Atomic bool stop;
	bool warned;
};

static int on_change(void *arg, uint32_t version, const struct deny_change *ch)
{
	struct gw_denylist *d = arg;
	struct fp_deny_entry e = {.medium = ch->medium, .added = ch->added, .token = ch->token};
	int rc = fp_pipeline_deny_append(d->pipe, version, &e);
	if (rc != 0 && !d->warned) {
		fprintf(stderr, "tapgate: deny list: change %u cannot be added (%s); restart the gateway\n", version,
			rc == FP_PIPE_ERR_NOMEM ? "the list is full" : "versions out of order");
		d->warned = true;
	}
	return rc != 0;
}

static void refresh(struct gw_denylist *d)
{
	char err[600];
	struct deny_reader *r;
	int rc = deny_reader_open(&r, d->path, err, sizeof(err));
	if (rc == DENY_ERR_ABSENT)
		return; /* no settlement yet: the list is empty */
	if (rc != 0) {
		if (!d->warned)
			fprintf(stderr, "tapgate: deny list: %s\n", err);
		d->warned = true;
		return;
	}
	uint32_t have = fp_pipeline_deny_version(d->pipe), version = 0;
	if (deny_reader_changes(r, have, on_change, d, &version, err, sizeof(err)) != 0 && !d->warned) {
		fprintf(stderr, "tapgate: deny list: %s\n", err);
		d->warned = true;
	}
	if (version < have && !d->warned) {
		fprintf(stderr, "tapgate: deny list went back from version %u to %u (a new settle store?); restart the "
				"gateway to take it\n", have, version);
		d->warned = true;
	}
	deny_reader_close(r);
}

static void *denylist_main(void *arg)
{
	struct gw_denylist *d = arg;
	while (!atomic_load(&d->stop)) {
		refresh(d);
		for (int i = 0; i < 10 && !atomic_load(&d->stop); i++) {
			struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

struct gw_denylist *gw_denylist_start(const char *settle_path, struct fp_pipeline *pipe)
{
	struct gw_denylist *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->pipe = pipe;
	snprintf(d->path, sizeof(d->path), "%s", settle_path);
	refresh(d); /* the list as it is now, before the first acknowledgement */
	if (pthread_create(&d->thread, NULL, denylist_main, d) != 0) {
		free(d);
		return NULL;
	}
	pthread_setname_np(d->thread, "tapgate-deny");
	return d;
}

void gw_denylist_stop(struct gw_denylist *d)
{
	if (!d)
		return;
	atomic_store(&d->stop, true);
	pthread_join(d->thread, NULL);
	free(d);
}

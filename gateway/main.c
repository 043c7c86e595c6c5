/*
 * main.c - the tapgate gateway program.
 *
 * Reads the config, opens the store, loads the validator keys, builds the
 * pipeline (which rebuilds the dedup set and starts the writer thread),
 * serves /metrics, and runs the ingress loop on the main thread until
 * SIGTERM or SIGINT. Stopping is orderly: stop receiving, commit what is
 * queued, send those acknowledgements, exit 0. A store that refuses to
 * commit during the stop makes the exit status 1: those taps were never
 * acknowledged, and validators will send them again.
 */
#include "base/assert.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "proc/proc.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tapgate [-c FILE] [-s section.key=value]... [--print-config | --check]\n"
		"  -c, --config FILE      settings (default config/tapgate.conf)\n"
		"  -s, --set S.K=V        override one setting, e.g. -s store.path=/tmp/store\n"
		"      --print-config     print the effective settings and exit\n"
		"  -t, --check            check the settings, key file, addresses and paths; exit 0,\n"
		"                         or 78 with the first error (file, line, key)\n"
		"  -h, --help             this text\n"
		"Signals: SIGTERM or SIGINT stop cleanly (within gateway.stop_timeout_s; a second one\n"
		"exits at once); SIGHUP reloads the key file, the QR platform key and the log file.\n"
		"See README.md and config/tapgate.conf.\n");
}

enum { MODE_RUN, MODE_PRINT, MODE_CHECK };

/* Parse the command line into s. Returns MODE_*, or -1 (usage printed). */
static int options_parse(int argc, char **argv, struct gw_settings *s)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
		{"print-config", no_argument, NULL, 'p'}, {"check", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'}, {0}};
	int opt, mode = MODE_RUN;
	*s = (struct gw_settings){.path = "config/tapgate.conf"};
	while ((opt = getopt_long(argc, argv, "c:s:th", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': s->path = optarg; break;
		case 's':
			if (s->nsets == GW_SETS_MAX) {
				fprintf(stderr, "tapgate: at most %u -s options\n", GW_SETS_MAX);
				return -1;
			}
			s->sets[s->nsets++] = optarg;
			break;
		case 'p': mode = MODE_PRINT; break;
		case 't': mode = MODE_CHECK; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tapgate: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return mode;
}

/* Parse options and the config file. Returns 0 to run, or an exit status (done). */
static int load_settings(int argc, char **argv, struct gw_settings *s, struct cfg *c, bool *done)
{
	char err[GW_ERR_MAX];
	*done = true;
	int mode = options_parse(argc, argv, s);
	if (mode < 0)
		return 2;
	if (mode == MODE_CHECK)
		return gw_settings_check(s, stdout);
	if (gw_settings_read(s, c, err, sizeof(err)) != 0) {
		fprintf(stderr, "*** FATAL CONFIG FILE ERROR ***\n%s\n", err);
		return 1;
	}
	if (mode == MODE_PRINT) {
		cfg_print(c, stdout);
		return 0;
	}
	*done = false;
	return 0;
}

static void pipeline_options(const struct cfg *c, struct fp_pipeline_options *o)
{
	*o = (struct fp_pipeline_options){
		.ring_frames = c->ring_frames,
		.commit_batch_taps = c->commit_batch_taps,
		.commit_interval_us = c->commit_interval_us,
		.dedup_window_s = c->dedup_window_days * 86400u,
		.clock_skew_s = c->clock_skew_s,
		.dedup_taps_max = c->dedup_taps_max,
		.amount_fen_max = c->amount_fen_max,
		.verify_threads = c->verify_threads,
		.shed_backlog_ms = c->shed_backlog_ms,
		.qr_verify_after_commit = c->qr_verify == CFG_QR_VERIFY_AFTER_COMMIT,
		.log_rebuild_progress = true,
		/* A store refusing every commit gets a third of the stop's bound. */
		.stop_retry_us = (uint64_t)c->stop_timeout_s * 1000000u / 3u,
	};
	if (o->verify_threads == 0) { /* one per CPU: the ingress and the writer mostly wait */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		o->verify_threads = cpus < 1 ? 1 : cpus > 64 ? 64 : (uint32_t)cpus;
	}
	memcpy(o->qr_public_key, c->qr_public_key, sizeof(o->qr_public_key));
}

static int dpdk_open(const struct cfg *c, struct fp_counters *ctr, struct fp_dpdk **out)
{
	struct fp_dpdk_options o = {
		.eal_args = c->dpdk_eal_args,
		.port = c->dpdk_port,
		.lcore = c->dpdk_lcore,
		.address = c->dpdk_address,
		.mac = c->dpdk_mac,
		.udp_port = (uint16_t)c->dpdk_udp_port,
		.rx_descriptors = (uint16_t)c->dpdk_rx_descriptors,
		.tx_descriptors = (uint16_t)c->dpdk_tx_descriptors,
		.mbufs = c->dpdk_mbufs,
		.idle_sleep_us = c->dpdk_idle_sleep_us,
		.icmp_echo = c->dpdk_icmp_echo != 0,
	};
	char err[1024];
	if (fp_dpdk_open(out, &o, ctr, err, sizeof(err)) != 0) {
		fprintf(stderr, "*** FATAL DPDK ERROR ***\n%s\n", err);
		return -1;
	}
	return 0;
}

static void summary(const struct fp_counters *cc)
{
	struct fp_counters *c = (struct fp_counters *)cc;
	uint64_t dropped = 0, rejected = 0;
	for (unsigned i = 0; i < FP_DROP_COUNT; i++)
		dropped += atomic_load(&c->frames_dropped[i]);
	for (unsigned i = 0; i < FP_REASON_COUNT; i++)
		rejected += atomic_load(&c->taps_rejected[i]);
	fprintf(stderr,
		"tapgate: stopped: frames %" PRIu64 " received, %" PRIu64 " acked, %" PRIu64
		" dropped; taps %" PRIu64 " stored, %" PRIu64 " duplicate, %" PRIu64
		" conflict, %" PRIu64 " rejected; %" PRIu64 " commits; ingress busy %.6f s\n",
		atomic_load(&c->frames_received), atomic_load(&c->frames_acked), dropped,
		atomic_load(&c->taps_stored), atomic_load(&c->taps_duplicate),
		atomic_load(&c->taps_conflict), rejected, atomic_load(&c->commits),
		(double)atomic_load(&c->ingress_busy_ns) / 1e9);
}

/*
 * The config's sync mode as the store's: two enums of two modules that sit
 * side by side (config/ depends on nothing), mapped by name, not by value.
 * The config table admits only these three: anything else is a programmer error.
 */
static enum st_sync store_sync(uint32_t cfg_sync)
{
	switch (cfg_sync) {
	case CFG_SYNC_FULL: return ST_SYNC_FULL;
	case CFG_SYNC_NOMETASYNC: return ST_SYNC_NOMETASYNC;
	case CFG_SYNC_NONE: return ST_SYNC_NONE;
	}
	TG_ASSERT(!"a sync mode the config table does not admit");
	return ST_SYNC_FULL;
}

/* Open the store; a store another process holds is named with its pid. Returns 0 or -1. */
static int store_open(const struct cfg *c, struct st_env **env)
{
	struct st_options so = {.path = c->store_path, .map_size_bytes = c->map_size_mb << 20,
				.sync = store_sync(c->sync)};
	int rc = st_env_open(env, &so);
	if (rc == ST_ERR_LOCKED) {
		long pid = st_env_lock_holder(c->store_path);
		fprintf(stderr, "tapgate: cannot open store '%s': it is in use by another process (pid %ld holds "
				"%s/tapgate.lock): one gateway per store\n", c->store_path, pid, c->store_path);
		return -1;
	}
	if (rc != 0) {
		fprintf(stderr, "tapgate: cannot open store '%s': %s\n", c->store_path, st_strerror(rc));
		return -1;
	}
	return 0;
}

/* Receive until a stop is asked for, then drain. Returns the exit status. */
static int serve(const struct cfg *c, unsigned validators, struct fp_pipeline *pipe, struct fp_dpdk *dpdk,
		 struct fp_counters *ctr, struct st_env *env)
{
	void *metrics = NULL;
	if (c->metrics_port != 0 &&
	    (metrics = gw_metrics_start(c->metrics_address, (uint16_t)c->metrics_port, ctr, env)) == NULL)
		return 1;
	struct gw_denylist *deny = gw_denylist_start(c->settle_path, pipe);
	if (deny == NULL) {
		fprintf(stderr, "tapgate: cannot start the deny-list thread\n");
		gw_metrics_stop(metrics);
		return 1;
	}
	struct gw_notify *notify = gw_notify_start(ctr, &stop_requested); /* systemd: READY=1, STOPPING=1 */
	if (notify == NULL)
		fprintf(stderr, "tapgate: cannot start the systemd notification thread: no READY=1 will be sent\n");
	fprintf(stderr, "tapgate: %u validators, store %s, metrics http://%s:%u/metrics, deny list version %u\n",
		validators, c->store_path, c->metrics_address, c->metrics_port,
		fp_pipeline_deny_version(pipe));
	int rc;
	if (dpdk != NULL)
		rc = fp_dpdk_run(dpdk, pipe, &stop_requested);
	else
		rc = fp_ingress_run(pipe, c->ingress == CFG_INGRESS_RECVMMSG ? FP_INGRESS_RECVMMSG : FP_INGRESS_IO_URING,
				    c->listen_address, (uint16_t)c->listen_port, &stop_requested, ctr);
	int status = 0;
	if (rc != 0) {
		fprintf(stderr, "tapgate: ingress failed: %s\n", strerror(-rc));
		status = 1;
	}
	int wrc = fp_pipeline_writer_status(pipe);
	if (wrc != 0) {
		fprintf(stderr, "tapgate: the store refused to commit while stopping (%s): the frames it did not "
				"commit were not acknowledged, and validators will send them again\n", st_strerror(wrc));
		status = 1;
	}
	summary(ctr);
	gw_notify_stop(notify);
	gw_denylist_stop(deny);
	gw_metrics_stop(metrics);
	return status;
}

int main(int argc, char **argv)
{
	static struct gw_settings settings;
	static struct gw_reload reload = {.settings = &settings, .lock = PTHREAD_MUTEX_INITIALIZER};
	static struct fp_counters ctr;
	struct cfg *c = &reload.running;
	struct fp_pipeline_options popt;
	struct proc_signals *signals = NULL;
	struct st_env *env = NULL;
	struct fp_pipeline *pipe = NULL;
	struct fp_dpdk *dpdk = NULL;
	char err[GW_ERR_MAX];
	bool done;
	proc_version_option(argc, argv, "tapgate");
	proc_init();
	fp_counters_init(&ctr);
	int status = load_settings(argc, argv, &settings, c, &done);
	if (done)
		return status;
	if (gw_log_open(c->log_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapgate: %s\n", err);
		return 1;
	}
	if (proc_signals_start(&signals, "tapgate", c->stop_timeout_s, &stop_requested, gw_reload, &reload) != 0) {
		fprintf(stderr, "tapgate: %s\n", proc_strerror(PROC_ERR_THREAD));
		return 1;
	}
	status = 1;
	struct fp_keys *keys = fp_keys_load(c->validator_key_file, err, sizeof(err));
	if (keys == NULL) {
		fprintf(stderr, "*** FATAL KEY FILE ERROR ***\n%s\n", err);
		goto out_stop_signals;
	}
	unsigned validators = fp_keys_count(keys);
	if (store_open(c, &env) != 0) {
		fp_keys_free(keys);
		goto out_stop_signals;
	}
	/* DPDK before the pipeline: a wrong EAL argument or port fails before the
	 * dedup rebuild, and the writer thread starts off the polling lcore's CPU. */
	if (c->ingress == CFG_INGRESS_DPDK && dpdk_open(c, &ctr, &dpdk) != 0) {
		fp_keys_free(keys);
		goto out_close_store;
	}
	pipeline_options(c, &popt);
	int rc = fp_pipeline_create(&pipe, &popt, keys, env, &ctr); /* owns keys from here */
	if (rc != 0) {
		fprintf(stderr, "tapgate: cannot start the pipeline: %s\n", fp_pipeline_strerror(rc));
		goto out_close_dpdk;
	}
	gw_reload_attach(&reload, pipe);
	status = serve(c, validators, pipe, dpdk, &ctr, env);
	gw_reload_attach(&reload, NULL);
	fp_pipeline_destroy(pipe);
out_close_dpdk:
	fp_dpdk_close(dpdk); /* after the pipeline: rte_eal_cleanup() comes last */
out_close_store:
	st_env_close(env);
out_stop_signals:
	proc_signals_stop(signals);
	return status;
}

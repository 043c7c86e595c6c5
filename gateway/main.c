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
#include "config/config.h"
#include "gateway/gateway.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tapgate [-c FILE] [-s section.key=value]... [--print-config]\n"
		"  -c, --config FILE      settings (default config/tapgate.conf)\n"
		"  -s, --set S.K=V        override one setting, e.g. -s store.path=/tmp/store\n"
		"      --print-config     print the effective settings and exit\n"
		"  -h, --help             this text\n"
		"Stops cleanly on SIGTERM or SIGINT. See README.md and config/tapgate.conf.\n");
}

/* Parse options and the config file. Returns 0, or an exit status. */
static int load_settings(int argc, char **argv, struct cfg *c)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
		{"print-config", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *path = "config/tapgate.conf";
	const char *sets[64];
	unsigned nsets = 0;
	bool print = false;
	char err[CFG_ERR_MAX];
	int opt;
	while ((opt = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 's':
			if (nsets == 64) {
				fprintf(stderr, "tapgate: at most 64 -s options\n");
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case 'p': print = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tapgate: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	cfg_defaults(c);
	if (cfg_load(c, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "*** FATAL CONFIG FILE ERROR ***\n%s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < nsets; i++) {
		if (cfg_set(c, sets[i], err, sizeof(err)) != 0) {
			fprintf(stderr, "*** FATAL CONFIG ERROR *** -s %s\n", err);
			return 1;
		}
	}
	if (cfg_validate(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "*** FATAL CONFIG FILE ERROR ***\n%s: %s\n", path, err);
		return 1;
	}
	if (print) {
		cfg_print(c, stdout);
		exit(0);
	}
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
		.log_rebuild_progress = true,
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

static void signals_install(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
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

int main(int argc, char **argv)
{
	struct cfg c;
	static struct fp_counters ctr;
	struct fp_pipeline_options popt;
	struct st_env *env = NULL;
	struct fp_pipeline *pipe = NULL;
	struct fp_dpdk *dpdk = NULL;
	char err[CFG_ERR_MAX];
	fp_counters_init(&ctr);
	int status = load_settings(argc, argv, &c);
	if (status != 0)
		return status;
	signals_install();

	struct fp_keys *keys = fp_keys_load(c.validator_key_file, err, sizeof(err));
	if (keys == NULL) {
		fprintf(stderr, "*** FATAL KEY FILE ERROR ***\n%s\n", err);
		return 1;
	}
	struct st_options so = {.path = c.store_path, .map_size_bytes = c.map_size_mb << 20,
				.sync = (enum st_sync)c.sync};
	int rc = st_env_open(&env, &so);
	if (rc != 0) {
		fprintf(stderr, "tapgate: cannot open store '%s': %s\n", c.store_path, st_strerror(rc));
		status = 1;
		goto out_free_keys;
	}
	/* DPDK before the pipeline: a wrong EAL argument or port fails before the
	 * dedup rebuild, and the writer thread starts off the polling lcore's CPU. */
	if (c.ingress == CFG_INGRESS_DPDK && dpdk_open(&c, &ctr, &dpdk) != 0) {
		status = 1;
		goto out_close_store;
	}
	pipeline_options(&c, &popt);
	rc = fp_pipeline_create(&pipe, &popt, keys, env, &ctr);
	if (rc != 0) {
		fprintf(stderr, "tapgate: cannot start the pipeline (error %d)\n", rc);
		status = 1;
		goto out_close_dpdk;
	}
	void *metrics = NULL;
	if (c.metrics_port != 0) {
		metrics = gw_metrics_start(c.metrics_address, (uint16_t)c.metrics_port, &ctr);
		if (metrics == NULL) {
			status = 1;
			goto out_destroy_pipeline;
		}
	}
	struct gw_denylist *deny = gw_denylist_start(c.settle_path, pipe);
	if (deny == NULL) {
		fprintf(stderr, "tapgate: cannot start the deny-list thread\n");
		status = 1;
		gw_metrics_stop(metrics);
		goto out_destroy_pipeline;
	}
	fprintf(stderr, "tapgate: %u validators, store %s, metrics http://%s:%u/metrics, deny list version %u\n",
		fp_keys_count(keys), c.store_path, c.metrics_address, c.metrics_port, fp_pipeline_deny_version(pipe));
	if (dpdk != NULL)
		rc = fp_dpdk_run(dpdk, pipe, &stop_requested);
	else
		rc = fp_ingress_run(pipe, c.ingress == CFG_INGRESS_RECVMMSG ? FP_INGRESS_RECVMMSG : FP_INGRESS_IO_URING,
				    c.listen_address, (uint16_t)c.listen_port, &stop_requested, &ctr);
	if (rc != 0 || fp_pipeline_writer_status(pipe) != 0)
		status = 1;
	summary(&ctr);
	gw_denylist_stop(deny);
	gw_metrics_stop(metrics);
out_destroy_pipeline:
	fp_pipeline_destroy(pipe);
out_close_dpdk:
	fp_dpdk_close(dpdk); /* after the pipeline: rte_eal_cleanup() comes last */
out_close_store:
	st_env_close(env);
out_free_keys:
	fp_keys_free(keys);
	return status;
}

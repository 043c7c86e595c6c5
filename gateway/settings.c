/*
 * settings.c - the gateway's settings over its life: read at start-up,
 * checked whole by --check, read again on SIGHUP.
 *
 * A reload re-reads the same file with the same -s overrides. What it can
 * put in force without a restart is marked in the config table (the keys
 * and the log file); any other key that changed is logged as not reloaded,
 * and the gateway goes on with the value it started with. A reload that
 * fails (a bad file, a key file with a bad line or mode) changes nothing
 * and says why: the running keys stay in force.
 */
#include "gateway/gateway.h"
#include "proc/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gw_settings_read(const struct gw_settings *s, struct cfg *c, char *err, size_t err_len)
{
	char why[CFG_ERR_MAX];
	cfg_defaults(c);
	int rc = cfg_load(c, s->path, err, err_len);
	for (unsigned i = 0; rc == 0 && i < s->nsets; i++)
		if ((rc = cfg_set(c, s->sets[i], why, sizeof(why))) != 0)
			snprintf(err, err_len, "-s %s", why);
	if (rc == 0 && (rc = cfg_validate(c, why, sizeof(why))) != 0)
		snprintf(err, err_len, "%s: %s", s->path, why);
	return rc;
}

int gw_log_open(const char *path, char *err, size_t err_len)
{
	static int stderr_fd = -1; /* the standard error we started with, for "-" after a file */
	if (stderr_fd < 0 && (stderr_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) < 0) {
		snprintf(err, err_len, "gateway.log_file: standard error: %s", strerror(errno));
		return -1;
	}
	if (strcmp(path, "-") == 0)
		return dup2(stderr_fd, STDERR_FILENO) < 0 ? -1 : 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		snprintf(err, err_len, "gateway.log_file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int address_check(const struct gw_settings *s, const char *name, const char *value, char *err,
			 size_t err_len)
{
	unsigned char buf[16];
	if (inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1)
		return 0;
	char where[CFG_PATH_MAX + 64];
	cfg_key_origin(s->path, s->sets, s->nsets, "gateway", name, where, sizeof(where));
	snprintf(err, err_len, "%s: '%s' is not an IPv4 or IPv6 address", where, value);
	return -1;
}

static int paths_check(const struct gw_settings *s, const struct cfg *c, char *err, size_t err_len)
{
	char why[CFG_ERR_MAX], where[CFG_PATH_MAX + 64];
	const char *section = "store", *name = "path";
	int rc = proc_path_writable(c->store_path, true, why, sizeof(why));
	if (rc == 0 && strcmp(c->log_file, "-") != 0) {
		section = "gateway", name = "log_file";
		rc = proc_path_writable(c->log_file, false, why, sizeof(why));
	}
	if (rc != 0) {
		cfg_key_origin(s->path, s->sets, s->nsets, section, name, where, sizeof(where));
		snprintf(err, err_len, "%s: %s", where, why);
	}
	return rc;
}

int gw_settings_check(const struct gw_settings *s, FILE *out)
{
	struct cfg c;
	char err[GW_ERR_MAX];
	int rc = gw_settings_read(s, &c, err, sizeof(err));
	struct fp_keys *keys = rc == 0 ? fp_keys_load(c.validator_key_file, err, sizeof(err)) : NULL;
	if (rc == 0 && keys == NULL)
		rc = -1;
	if (rc == 0 && (address_check(s, "listen_address", c.listen_address, err, sizeof(err)) != 0 ||
			address_check(s, "metrics_address", c.metrics_address, err, sizeof(err)) != 0 ||
			paths_check(s, &c, err, sizeof(err)) != 0))
		rc = -1;
	if (rc != 0) {
		fprintf(out, "tapgate: check failed: %s\n", err);
		fp_keys_free(keys);
		return GW_EXIT_CONFIG;
	}
	long holder = st_env_lock_holder(c.store_path);
	fprintf(out, "tapgate: %s: configuration OK: %u validators (%u keys) in %s, store %s%s", s->path,
		fp_keys_count(keys), fp_keys_total(keys), c.validator_key_file, c.store_path,
		c.ingress == CFG_INGRESS_DPDK ? "; DPDK's EAL and port are checked only at start-up" : "");
	if (holder > 0 && kill((pid_t)holder, 0) == 0)
		fprintf(out, " (in use by pid %ld)", holder);
	fprintf(out, "\n");
	fp_keys_free(keys);
	return 0;
}

struct reload_log {
	unsigned not_reloaded;
};

static void on_changed(void *arg, const char *section, const char *name, bool reloadable)
{
	struct reload_log *r = arg;
	if (reloadable)
		return;
	r->not_reloaded++;
	fprintf(stderr, "tapgate: reload: %s.%s changed, but cannot be reloaded: the old value stays in force "
			"until a restart\n", section, name);
}

static void reload_locked(struct gw_reload *r);

void gw_reload_attach(struct gw_reload *r, struct fp_pipeline *pipe)
{
	pthread_mutex_lock(&r->lock);
	r->pipe = pipe;
	pthread_mutex_unlock(&r->lock);
}

void gw_reload(void *arg)
{
	struct gw_reload *r = arg;
	pthread_mutex_lock(&r->lock);
	if (r->pipe == NULL)
		fprintf(stderr, "tapgate: SIGHUP while starting: nothing reloaded; send it again once the gateway is up\n");
	else
		reload_locked(r);
	pthread_mutex_unlock(&r->lock);
}

/* The SIGHUP handler's work, on the signal thread (proc_signals_start). */
static void reload_locked(struct gw_reload *r)
{
	struct cfg c;
	char err[GW_ERR_MAX];
	struct fp_keys *keys = NULL;
	int rc = gw_settings_read(r->settings, &c, err, sizeof(err));
	if (rc == 0 && (keys = fp_keys_load(c.validator_key_file, err, sizeof(err))) == NULL)
		rc = -1;
	if (rc == 0 && gw_log_open(c.log_file, err, sizeof(err)) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "tapgate: reload failed, the running settings and keys stay in force: %s\n", err);
		fp_keys_free(keys);
		return;
	}
	struct reload_log log = {0};
	cfg_diff(&r->running, &c, on_changed, &log);
	bool qr_changed = memcmp(c.qr_public_key, r->running.qr_public_key, sizeof(c.qr_public_key)) != 0;
	unsigned validators = fp_keys_count(keys), total = fp_keys_total(keys);
	if (fp_pipeline_auth_replace(r->pipe, keys, c.qr_public_key) != 0) {
		fprintf(stderr, "tapgate: reload failed (out of memory): the running keys stay in force\n");
		return;
	}
	memcpy(r->running.validator_key_file, c.validator_key_file, sizeof(c.validator_key_file));
	memcpy(r->running.qr_public_key, c.qr_public_key, sizeof(c.qr_public_key));
	memcpy(r->running.log_file, c.log_file, sizeof(c.log_file));
	fprintf(stderr, "tapgate: reloaded: %u validators (%u keys) from %s, in force from the next frame; QR "
			"platform key %s; log %s%s\n",
		validators, total, c.validator_key_file, qr_changed ? "changed" : "unchanged",
		strcmp(c.log_file, "-") == 0 ? "on standard error" : "reopened",
		log.not_reloaded ? "; some changes need a restart (above)" : "");
}

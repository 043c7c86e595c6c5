/*
 * test_config.c - the settings table: defaults, the shipped config file, and
 * that every kind of bad value is fatal with file, line and key named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_conf(const char *text)
{
	strcpy(path, "/tmp/tapgate-test-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int load_text(const char *text, struct cfg *c, char *err)
{
	write_conf(text);
	cfg_defaults(c);
	int rc = cfg_load(c, path, err, CFG_ERR_MAX);
	unlink(path);
	return rc;
}

static void test_defaults(void **state)
{
	(void)state;
	struct cfg c;
	cfg_defaults(&c);
	assert_int_equal(c.listen_port, 7700);
	assert_int_equal(c.commit_batch_taps, 4096);
	assert_int_equal(c.dedup_window_days, 14);
	assert_int_equal(c.sync, CFG_SYNC_FULL);
	assert_string_equal(c.store_path, "var/store");
	char err[CFG_ERR_MAX];
	/* No QR platform key: required. */
	assert_int_equal(cfg_validate(&c, err, sizeof(err)), CFG_ERR_MISSING);
	assert_non_null(strstr(err, "qr_platform_public_key"));
}

static void test_shipped_file_loads(void **state)
{
	(void)state;
	struct cfg c;
	char err[CFG_ERR_MAX];
	cfg_defaults(&c);
	int rc = cfg_load(&c, "config/tapgate.conf", err, sizeof(err));
	if (rc != 0)
		fail_msg("config/tapgate.conf: %s", err);
	assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
}

static void test_values(void **state)
{
	(void)state;
	struct cfg c;
	char err[CFG_ERR_MAX];
	assert_int_equal(load_text("[store]\ncommit_batch_taps = 1000\nsync = nometasync\n"
				   "[gateway]\ningress = recvmmsg\n", &c, err), 0);
	assert_int_equal(c.commit_batch_taps, 1000);
	assert_int_equal(c.sync, CFG_SYNC_NOMETASYNC);
	assert_int_equal(c.ingress, CFG_INGRESS_RECVMMSG);
	assert_int_equal(cfg_set(&c, "store.path=/tmp/x", err, sizeof(err)), 0);
	assert_string_equal(c.store_path, "/tmp/x");
}

static void expect_error(const char *text, int code, const char *line_key)
{
	struct cfg c;
	char err[CFG_ERR_MAX], want[128];
	assert_int_equal(load_text(text, &c, err), code);
	/* The message starts with the file and line and names the key. */
	snprintf(want, sizeof(want), "%s:%s", path, line_key);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err, want);
}

static void test_bad_values_name_file_line_key(void **state)
{
	(void)state;
	expect_error("[gateway]\nlisten_port = 70000\n", CFG_ERR_VALUE, "2: key 'gateway.listen_port'");
	expect_error("[store]\n\ncommit_batch_taps = -5\n", CFG_ERR_VALUE, "3: key 'store.commit_batch_taps'");
	expect_error("[store]\nmap_size_mb = 12abc\n", CFG_ERR_VALUE, "2: key 'store.map_size_mb'");
	expect_error("[store]\nsync = sometimes\n", CFG_ERR_VALUE, "2: key 'store.sync'");
	expect_error("[keys]\nqr_platform_public_key = abcd\n", CFG_ERR_VALUE,
		     "2: key 'keys.qr_platform_public_key'");
	expect_error("[gateway]\nlisten_prot = 1\n", CFG_ERR_KEY, "2: unknown key 'gateway.listen_prot'");
	expect_error("[store]\nthis line has no equals sign\n", CFG_ERR_SYNTAX, "2: syntax error");
}

static void test_bad_set(void **state)
{
	(void)state;
	struct cfg c;
	char err[CFG_ERR_MAX];
	cfg_defaults(&c);
	assert_int_equal(cfg_set(&c, "store.ring_frames=12", err, sizeof(err)), CFG_ERR_VALUE);
	assert_non_null(strstr(err, "store.ring_frames"));
	assert_int_equal(cfg_set(&c, "nosuch", err, sizeof(err)), CFG_ERR_SYNTAX);
	assert_int_equal(cfg_set(&c, "store.ring_frames=100", err, sizeof(err)), 0);
	memset(c.qr_public_key, 1, sizeof(c.qr_public_key));
	assert_int_equal(cfg_validate(&c, err, sizeof(err)), CFG_ERR_VALUE); /* not a power of two */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_file_loads),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_bad_values_name_file_line_key),
		cmocka_unit_test(test_bad_set),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

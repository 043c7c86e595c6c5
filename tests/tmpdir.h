/*
 * tmpdir.h - each test's own temporary directory, for the unit tests that
 * open LMDB environments (test_store, test_deny): `dir` is made fresh by
 * setup() and removed with everything in it by teardown() (cmocka's
 * per-test setup and teardown). Included by test files only.
 */
#ifndef TAPGATE_TESTS_TMPDIR_H
#define TAPGATE_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/tapgate-test-XXXXXX");
	return mkdtemp(dir) == NULL;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

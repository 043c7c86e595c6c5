/*
 * service.c - what a service manager and an operator see of a program
 * (proc.h): its version, and its state told to systemd.
 *
 * The version comes from one place, the first line of debian/changelog: the
 * Makefile passes it to this file alone as TAPGATE_VERSION, so a new version
 * recompiles one file and every program, /metrics' tapgate_build_info and
 * the man pages (help2man reads --version) agree.
 *
 * Under systemd (Type=notify) the programs say READY=1 once they do their
 * work, WATCHDOG=1 while they are well and STOPPING=1 when a stop begins,
 * through libsystemd's sd_notify. Outside systemd ($NOTIFY_SOCKET unset)
 * every call does nothing, so tests and foreground runs need no systemd.
 */
#include "proc/proc.h"

#include <string.h>
#include <systemd/sd-daemon.h>

#ifndef TAPGATE_VERSION
#error "TAPGATE_VERSION is set by the Makefile from debian/changelog"
#endif

const char *proc_version(void)
{
	return TAPGATE_VERSION;
}

void proc_version_option(int argc, char **argv, const char *name)
{
	if (argc < 2 || strcmp(argv[1], "--version") != 0)
		return;
	printf("%s (tapgate) %s\n", name, TAPGATE_VERSION);
	exit(0);
}

void proc_notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void proc_notify_status(const char *status)
{
	sd_notifyf(0, "STATUS=%s", status);
}

void proc_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

uint64_t proc_notify_watchdog_us(void)
{
	uint64_t us = 0;
	return sd_watchdog_enabled(0, &us) > 0 ? us : 0;
}

void proc_notify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

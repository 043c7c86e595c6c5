/*
 * proc.h - the one public header of proc/: the process lifecycle that every
 * tapgate program shares.
 *
 * - proc_init(): the program's own umask (027: what it creates is never
 *   world-readable, whatever the shell's umask) and its signal mask.
 * - proc_signals_*: a thread that takes SIGTERM, SIGINT and SIGHUP. The first
 *   SIGTERM or SIGINT asks the program to stop; a stop that has not finished
 *   within stop_timeout_s, or a second SIGTERM/SIGINT, ends the process with
 *   status 1 and a line saying so, so that no stop can hang. SIGHUP asks for
 *   a reload: it never ends the process.
 * - proc_secret_open(): the checks a key file passes before it is read, as
 *   OpenSSH checks a private key.
 * - proc_version*, proc_notify_*: the version (one for every program) and
 *   the state told to systemd (service.c).
 *
 * Depends on nothing else of tapgate.
 */
#ifndef TAPGATE_PROC_H
#define TAPGATE_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Errors: negative, see proc_strerror(). */
enum proc_error {
	PROC_ERR_OPEN = -400,   /* cannot be opened or read */
	PROC_ERR_TYPE = -401,   /* not a regular file (a FIFO, a device, a directory) */
	PROC_ERR_MODE = -402,   /* readable or writable by group or others */
	PROC_ERR_OWNER = -403,  /* owned by another user than us or root */
	PROC_ERR_SIZE = -404,   /* larger than the caller allows */
	PROC_ERR_THREAD = -405, /* the signal thread cannot start */
};
const char *proc_strerror(int err);

/* Files the programs create are at most 0640; stores use 0640 or 0600. */
#define PROC_UMASK 027
/* The default bound on a stop, in seconds (config key gateway.stop_timeout_s). */
#define PROC_STOP_TIMEOUT_S_DEFAULT 30u
/* Exit status of a stop cut short (timeout, second signal) or of a failed one. */
#define PROC_EXIT_STOP_FAILED 1

/*
 * Call first in main(), before any thread starts: sets the umask and blocks
 * SIGTERM, SIGINT and SIGHUP in this thread and every thread it will start,
 * so that only the signal thread receives them (a signal that arrives
 * before it starts waits, pending). Ignores SIGPIPE.
 */
void proc_init(void);

/*
 * Instead of proc_init(), for a tool with nothing to finish on a stop (its
 * stores are transactional: what it had not committed is done again by its
 * next run): the umask, and SIGTERM, SIGINT or SIGHUP end it at once with a
 * line and status 128 + signal.
 */
void proc_tool_init(void);

struct proc_signals;
typedef void (*proc_reload_fn)(void *arg);

/*
 * Start the signal thread of the program called name (used in its log
 * lines). The first SIGTERM or SIGINT sets *stop to 1; from then on the
 * process has stop_timeout_s seconds (1 .. 3600) before the thread ends it
 * with status PROC_EXIT_STOP_FAILED. Each SIGHUP calls reload(arg) on
 * the signal thread (NULL: the SIGHUP is only counted, see proc_signals_hups);
 * a SIGHUP while stopping is logged and ignored.
 * Returns 0 or PROC_ERR_THREAD.
 */
int proc_signals_start(struct proc_signals **out, const char *name, uint32_t stop_timeout_s,
		       volatile sig_atomic_t *stop, proc_reload_fn reload, void *arg);
/* How many SIGHUPs have arrived since the start. */
uint64_t proc_signals_hups(struct proc_signals *s);
/*
 * Sleep up to timeout_ms, the sleep of a daemon between cycles: returns at
 * once, or early, when a stop is asked for or the SIGHUP count is not
 * hups_seen (the count the caller last acted on). Returns true if it
 * returned early.
 */
bool proc_signals_sleep(struct proc_signals *s, uint32_t timeout_ms, uint64_t hups_seen);
/* Stop and join the signal thread (NULL: nothing). */
void proc_signals_stop(struct proc_signals *s);

/*
 * Open a secret for reading: it must be a regular file (a FIFO or /dev/zero
 * would block or never end), owned by us or root, with no permission for
 * group or others, and at most max_bytes long. Returns the stream, or NULL
 * with the error in *why (a PROC_ERR_*) and "PATH: what is wrong, and the
 * fix" in err.
 */
FILE *proc_secret_open(const char *path, uint64_t max_bytes, int *why, char *err, size_t err_len);

/*
 * Can this program create or write path (a directory if dir, else a
 * file)? A missing path needs a writable directory above it. For check
 * modes: the writes themselves still check. Returns 0, or -1 with why.
 */
int proc_path_writable(const char *path, bool dir, char *why, size_t why_len);

/* The version of tapgate, e.g. "0.9.0" (from debian/changelog, see service.c). */
const char *proc_version(void);
/* Call first in main(): if argv[1] is --version, print "NAME (tapgate) VERSION" and exit 0. */
void proc_version_option(int argc, char **argv, const char *name);

/*
 * Tell systemd (Type=notify) the program's state; outside systemd nothing
 * happens. ready: the program does its work now (status: one line shown by
 * systemctl status). stopping: a stop has begun. watchdog: the program is
 * well; proc_notify_watchdog_us() is the unit's WatchdogSec in
 * microseconds (0: no watchdog), to be pinged at least twice within.
 */
void proc_notify_ready(const char *status);
void proc_notify_status(const char *status);
void proc_notify_stopping(void);
uint64_t proc_notify_watchdog_us(void);
void proc_notify_watchdog(void);

#endif

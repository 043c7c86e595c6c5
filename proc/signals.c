/*
 * signals.c - one thread takes the program's signals (proc.h).
 *
 * proc_init() blocks SIGTERM, SIGINT and SIGHUP before any thread starts, so
 * every thread inherits the mask and only this thread, in sigtimedwait(),
 * ever receives them: no handler runs in the middle of an LMDB call or a
 * burst, and the work a signal asks for (a reload) runs on an ordinary
 * thread, not in a handler. The thread wakes every TICK_MS to enforce the
 * stop's deadline: a writer that blocks on a dead disk, or any other stop
 * that cannot finish, ends with a line and status 1 instead of a hang.
 */
#include "proc/proc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100u
#define STOP_TIMEOUT_S_MAX 3600u

struct proc_signals {
	pthread_t thread;
	const char *name;
	uint32_t stop_timeout_s;
	volatile sig_atomic_t *stop;
	proc_reload_fn reload;
	void *arg;
	_Atomic bool quit;
	_Atomic uint64_t hups;
	uint64_t deadline_us; /* signal thread only: 0 until a stop is asked for */
	pthread_mutex_t lock; /* with wake: proc_signals_sleep */
	pthread_cond_t wake;
};

const char *proc_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case PROC_ERR_OPEN: return "cannot be read";
	case PROC_ERR_TYPE: return "not a regular file";
	case PROC_ERR_MODE: return "readable or writable by group or others";
	case PROC_ERR_OWNER: return "owned by another user";
	case PROC_ERR_SIZE: return "too large";
	case PROC_ERR_THREAD: return "the signal thread cannot start";
	default: return "unknown proc error";
	}
}

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void proc_init(void)
{
	sigset_t set;
	umask(PROC_UMASK);
	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wake proc_signals_sleep: under the lock, so a sleeper between its check and its wait is not missed. */
static void sleepers_wake(struct proc_signals *s)
{
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void on_stop_signal(struct proc_signals *s, int sig)
{
	if (*s->stop) {
		fprintf(stderr, "%s: second SIG%s while stopping: exiting now (status %d); what was not acknowledged "
				"or committed is not, and is sent or done again after a restart\n",
			s->name, sigabbrev_np(sig), PROC_EXIT_STOP_FAILED);
		_exit(PROC_EXIT_STOP_FAILED);
	}
	fprintf(stderr, "%s: SIG%s: stopping (at most %u s; a second signal ends it at once)\n", s->name,
		sigabbrev_np(sig), s->stop_timeout_s);
	*s->stop = 1;
	s->deadline_us = mono_us() + (uint64_t)s->stop_timeout_s * 1000000u;
	sleepers_wake(s);
}

static void on_hup(struct proc_signals *s)
{
	if (*s->stop) {
		fprintf(stderr, "%s: SIGHUP while stopping: no reload\n", s->name);
		return;
	}
	atomic_fetch_add(&s->hups, 1);
	if (s->reload != NULL)
		s->reload(s->arg);
	sleepers_wake(s);
}

static void *signals_main(void *arg)
{
	struct proc_signals *s = arg;
	const struct timespec tick = {0, (long)TICK_MS * 1000000};
	sigset_t set;
	signal_set(&set);
	while (!atomic_load(&s->quit)) {
		int sig = sigtimedwait(&set, NULL, &tick);
		if (atomic_load(&s->quit))
			break;
		if (sig == SIGHUP)
			on_hup(s);
		else if (sig == SIGTERM || sig == SIGINT)
			on_stop_signal(s, sig);
		if (s->deadline_us != 0 && mono_us() >= s->deadline_us) {
			fprintf(stderr, "%s: the stop did not finish within %u s: exiting (status %d)\n", s->name,
				s->stop_timeout_s, PROC_EXIT_STOP_FAILED);
			_exit(PROC_EXIT_STOP_FAILED);
		}
	}
	return NULL;
}

/* The first SIGTERM or SIGINT of a tool with nothing to finish: say so, and go. */
static void on_signal_exit(int sig)
{
	static const char msg[] = ": stopped by a signal\n";
	const char *name = program_invocation_short_name; /* glibc's, set before main() */
	(void)!write(STDERR_FILENO, name, strlen(name));
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(128 + sig);
}

void proc_tool_init(void)
{
	struct sigaction sa = {.sa_handler = on_signal_exit};
	sigset_t set;
	umask(PROC_UMASK);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* a tool has nothing to reload: its terminal went away */
	signal_set(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int proc_signals_start(struct proc_signals **out, const char *name, uint32_t stop_timeout_s,
		       volatile sig_atomic_t *stop, proc_reload_fn reload, void *arg)
{
	*out = NULL;
	struct proc_signals *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return PROC_ERR_THREAD;
	*s = (struct proc_signals){.name = name, .stop = stop, .reload = reload, .arg = arg,
				   .stop_timeout_s = stop_timeout_s < 1		     ? 1
						     : stop_timeout_s > STOP_TIMEOUT_S_MAX ? STOP_TIMEOUT_S_MAX
											   : stop_timeout_s};
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->thread, NULL, signals_main, s) != 0) {
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return PROC_ERR_THREAD;
	}
	pthread_setname_np(s->thread, "signals");
	*out = s;
	return 0;
}

uint64_t proc_signals_hups(struct proc_signals *s)
{
	return s != NULL ? atomic_load(&s->hups) : 0;
}

bool proc_signals_sleep(struct proc_signals *s, uint32_t timeout_ms, uint64_t hups_seen)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000u;
	until.tv_nsec += (long)(timeout_ms % 1000u) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	/* A SIGHUP that came before the sleep began counts too: nothing is missed. */
	while (atomic_load(&s->hups) == hups_seen && !*s->stop && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->wake, &s->lock, &until);
	bool early = atomic_load(&s->hups) != hups_seen || *s->stop;
	pthread_mutex_unlock(&s->lock);
	return early;
}

void proc_signals_stop(struct proc_signals *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->quit, true);
	pthread_kill(s->thread, SIGHUP); /* wakes sigtimedwait; quit is checked first */
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

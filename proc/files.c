/*
 * files.c - checks on files before a program relies on them (proc.h).
 *
 * A secret (a key file) is checked before it is read.
 * The file is opened with O_NONBLOCK and checked with fstat() on the open
 * descriptor, not stat() on the path, so that what is checked is what is
 * read: a FIFO cannot block the open, /dev/zero cannot feed an endless
 * read, and a file swapped between check and read is not the one read.
 * Permission bits for group or others refuse the file, as OpenSSH refuses a
 * private key: a key that others can read is a key that others may hold.
 */
#include "proc/proc.h"

#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_BYTES_MAX 4096u

static FILE *refuse(int fd, int code, int *why, char *err, size_t err_len, const char *path, const char *text)
{
	if (fd >= 0)
		close(fd);
	*why = code;
	snprintf(err, err_len, "%s: %s", path, text);
	return NULL;
}

FILE *proc_secret_open(const char *path, uint64_t max_bytes, int *why, char *err, size_t err_len)
{
	char text[256];
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(text, sizeof(text), "cannot read: %s", strerror(errno));
		return refuse(fd, PROC_ERR_OPEN, why, err, err_len, path, text);
	}
	if (!S_ISREG(st.st_mode))
		return refuse(fd, PROC_ERR_TYPE, why, err, err_len, path,
			      "not a regular file (a key file is a plain file, not a FIFO, device or directory)");
	if ((st.st_mode & 077) != 0) {
		snprintf(text, sizeof(text), "mode %04o: a key file must not be readable or writable by group or "
					     "others; chmod 600 %s",
			 (unsigned)(st.st_mode & 07777), path);
		return refuse(fd, PROC_ERR_MODE, why, err, err_len, path, text);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(text, sizeof(text), "owned by uid %u: a key file must belong to us (uid %u) or root",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return refuse(fd, PROC_ERR_OWNER, why, err, err_len, path, text);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		snprintf(text, sizeof(text), "%lld bytes: larger than any key file can be (%llu)",
			 (long long)st.st_size, (unsigned long long)max_bytes);
		return refuse(fd, PROC_ERR_SIZE, why, err, err_len, path, text);
	}
	int flags = fcntl(fd, F_GETFL);
	FILE *f = flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "r") : NULL;
	if (f == NULL) {
		snprintf(text, sizeof(text), "cannot read: %s", strerror(errno));
		return refuse(fd, PROC_ERR_OPEN, why, err, err_len, path, text);
	}
	*why = 0;
	return f;
}

int proc_path_writable(const char *path, bool dir, char *why, size_t why_len)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (dir != S_ISDIR(st.st_mode)) {
			snprintf(why, why_len, "%s: %s", path, dir ? "not a directory" : "a directory");
			return -1;
		}
		if (access(path, dir ? W_OK | X_OK : W_OK) != 0) {
			snprintf(why, why_len, "%s: cannot write: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	char copy[PATH_BYTES_MAX];
	snprintf(copy, sizeof(copy), "%s", path);
	const char *parent = dirname(copy); /* of "var/store": "var", which may be missing too */
	if (access(parent, W_OK | X_OK) != 0) {
		snprintf(why, why_len, "%s does not exist, and its directory %s cannot be written: %s", path,
			 parent, strerror(errno));
		return -1;
	}
	return 0;
}

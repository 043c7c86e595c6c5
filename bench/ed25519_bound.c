/*
 * ed25519_bound.c - the machine's Ed25519 verification bound, for make bench.
 *
 * The QR rows of the bench are worth nothing without the ceiling they are
 * measured against: how many crypto_sign_verify_detached() calls per second
 * this machine does on all its cores at once (one thread per CPU online, each
 * verifying its own valid signature of a 33-byte QR payload, as the gateway
 * does). Prints "threads=N verifies_per_s=V ns_per_verify_per_thread=T".
 * Usage: ed25519_bound [-s SECONDS] [-t THREADS]
 */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define THREADS_MAX 256

struct worker {
	pthread_t thread;
	double seconds;
	uint64_t verifies;
};

static uint8_t public_key[crypto_sign_PUBLICKEYBYTES], message[33], signature[crypto_sign_BYTES];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	double end = now_s() + w->seconds;
	while (now_s() < end) {
		for (int i = 0; i < 64; i++)
			if (crypto_sign_verify_detached(signature, message, sizeof(message), public_key) != 0)
				abort(); /* the signature is valid: a failure is a bug */
		w->verifies += 64;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = 3;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	int c;
	while ((c = getopt(argc, argv, "s:t:")) != -1) {
		if (c == 's')
			seconds = atof(optarg);
		else if (c == 't')
			threads = atol(optarg);
		else
			return 2;
	}
	if (sodium_init() < 0 || threads < 1 || threads > THREADS_MAX || seconds <= 0)
		return 2;
	uint8_t secret_key[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(public_key, secret_key);
	randombytes_buf(message, sizeof(message));
	crypto_sign_detached(signature, NULL, message, sizeof(message), secret_key);
	static struct worker w[THREADS_MAX];
	double start = now_s();
	for (long i = 0; i < threads; i++) {
		w[i].seconds = seconds;
		if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0)
			return 1;
	}
	uint64_t total = 0;
	for (long i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		total += w[i].verifies;
	}
	double elapsed = now_s() - start;
	printf("threads=%ld verifies_per_s=%.0f ns_per_verify_per_thread=%.0f\n", threads, (double)total / elapsed,
	       elapsed * 1e9 * (double)threads / (double)total);
	return 0;
}

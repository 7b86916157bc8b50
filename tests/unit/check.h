/*
 * check.h — the tiny assertion kit of the unit tests. Each test program is a
 * main() calling CHECK*; a failure prints file:line and the expression, the
 * program exits 1 at the end so ctest reports it. No framework dependency.
 */
#ifndef RELASI_TEST_CHECK_H
#define RELASI_TEST_CHECK_H

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(expr) do { \
	check_count++; \
	if (!(expr)) { \
		check_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
	} \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	check_count++; \
	if (check_a_ != check_b_) { \
		check_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
			__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
	} \
} while (0)

#define CHECK_EQ_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	check_count++; \
	if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) { \
		check_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
			__FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)", \
			check_b_ ? check_b_ : "(null)"); \
	} \
} while (0)

#define CHECK_DONE() do { \
	printf("%d checks, %d failed\n", check_count, check_failures); \
	return check_failures ? 1 : 0; \
} while (0)

#endif

/* libFuzzer target for authfail.c: any bytes as the failure record.  The
 * record is the user's file, but a crash or a write past a buffer there
 * would be a way around the delay; and whatever it held, the record
 * written back must read as a record again. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../authfail.h"

static char path[] = "/tmp/fuzz-authfail-XXXXXX";

static void
put(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int made;
	const char *addr = size && data[0] & 1 ? "2001:db8::7" : "192.0.2.7";
	long wait;

	if (!made++) {
		int fd = mkstemp(path);

		if (fd < 0)
			abort();
		close(fd);
		setenv("IMAPD_LOG_STDERR", "1", 1);
	}
	put(data, size);
	authfail_begin(path, addr);
	/* what it wrote back is a record: a second look finds no fault */
	if ((wait = authfail_begin(path, addr)) < 0)
		abort();
	authfail_clear(path, addr);
	if (authfail_begin(path, addr) < 0)
		abort();
	return 0;
}

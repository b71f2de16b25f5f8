/* managesieve.c: imapd -S, a ManageSieve session (RFC 5804) */
#include <stdio.h>

#include "imapd.h"

int
managesieve_main(int argc, char *argv[])
{
	fputs("imapd -S: not built yet\n", stderr);
	return 1;
}

/* imapd.h: the modes imapd.c's main starts besides IMAP */
#ifndef IMAPD_H
#define IMAPD_H

/* check.c: imapd -t, the configuration shown and checked; exit status */
int check_setup(void);
/* deliver.c: imapd -d, the local delivery agent; managesieve.c: imapd -S */
int deliver_main(int argc, char *argv[]);
int managesieve_main(int argc, char *argv[]);

#endif

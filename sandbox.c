/* sandbox.c: confining the process once start-up is done, so that a bug
 * in the session reaches no further than the Maildir.  On Linux: Landlock
 * limits the files to the Maildir (and, before login, the password file
 * and the failure record), seccomp limits the system calls to those the
 * server makes, no new privileges and no new processes.  When a PAM
 * service or a checkpassword program decides logins, those need programs
 * and privileges of their own: the confinement then waits for the login.
 * Resource limits apply everywhere. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "auth.h"
#include "sandbox.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *maildir, *pwfile, *failfile;
static int locked;	/* no new privileges, processes or system calls */

void
sandbox_paths(const char *m, const char *p, const char *f)
{
	maildir = m;
	pwfile = p;
	failfile = f;
}

static void
lower(int what, rlim_t to)
{
	struct rlimit rl;

	if (getrlimit(what, &rl) < 0)
		return;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > to)
		rl.rlim_max = to;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(what, &rl) < 0)
		logmsg(LOG_WARNING, "sandbox: setrlimit: %s", strerror(errno));
}

static void
limits(void)
{
	static int done;

	if (done++)
		return;
	lower(RLIMIT_CORE, 0);	/* a core file would hold passwords */
	signal(SIGXFSZ, SIG_IGN);	/* too large a file: EFBIG, no death */
	lower(RLIMIT_FSIZE, LIMIT_FILESIZE);
	lower(RLIMIT_NOFILE, LIMIT_FILES);
	if (!SANITIZED)		/* the sanitizers reserve terabytes */
		lower(RLIMIT_AS, LIMIT_MEMORY);
}

#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>

/* --- Landlock --------------------------------------------------------- */

#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE)
#define READ_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

static int abi;

/* every right this kernel knows, all of them handled (so denied unless
 * a rule grants them) */
static __u64
all_rights(void)
{
	__u64 r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

#ifdef LANDLOCK_ACCESS_FS_REFER
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return r;
}

static __u64
file_rights(void)
{
	__u64 r = FILE_RIGHTS;

#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return r;
}

/* allow rights beneath path; a file that is missing is no error, nor is
 * a failure record that cannot be opened (authfail.c says so and falls
 * back on the delay of the connection) */
static int
allow(int ruleset, const char *path, __u64 rights, int create)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat sb;
	int fd, r;

	fd = create ? open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600) : open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || create ? 0 : -1;
	if (fstat(fd, &sb) == 0 && !S_ISDIR(sb.st_mode))
		rights &= file_rights();
	pb.allowed_access = rights & all_rights();
	pb.parent_fd = fd;
	r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
	    &pb, 0);
	close(fd);
	return r;
}

/* what every stage reads outside the Maildir: the character set
 * converters and time zones under /usr, the random device */
static int
allow_system(int ruleset)
{
	if (allow(ruleset, "/usr", READ_RIGHTS, 0) < 0 ||
	    allow(ruleset, "/dev/urandom", READ_RIGHTS, 0) < 0 ||
	    allow(ruleset, "/dev/null", READ_RIGHTS |
	    LANDLOCK_ACCESS_FS_WRITE_FILE, 0) < 0)
		return -1;
	/* the sanitizers read the memory map when they report */
	if (SANITIZED && allow(ruleset, "/proc", READ_RIGHTS, 0) < 0)
		return -1;
	return 0;
}

static int
landlock(int stage)
{
	struct landlock_ruleset_attr attr = { 0 };
	int rs, r = -1;

	if (!abi)
		abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
		    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi <= 0) {
		if (abi == -1)
			logmsg(LOG_NOTICE, "sandbox: Landlock not available "
			    "(%s); files are not confined", strerror(errno));
		abi = -2;
		return 0;
	}
	attr.handled_access_fs = all_rights();
	if ((rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr),
	    0)) < 0)
		return -1;
	if (allow(rs, maildir, all_rights(), 0) == 0 &&
	    allow_system(rs) == 0 &&
	    (stage != SANDBOX_LOGIN ||
	    (allow(rs, pwfile, READ_RIGHTS, 0) == 0 &&
	    allow(rs, failfile, READ_RIGHTS | LANDLOCK_ACCESS_FS_WRITE_FILE,
	    1) == 0)))
		r = syscall(SYS_landlock_restrict_self, rs, 0);
	close(rs);
	return r;
}

/* --- seccomp ---------------------------------------------------------- */

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#elif defined(__arm__)
#define ARCH AUDIT_ARCH_ARM
#elif defined(__i386__)
#define ARCH AUDIT_ARCH_I386
#endif

/* the system calls a session makes, from start-up to LOGOUT: those of
 * every architecture, then the ones each names its own way */
static const int allowed[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64,
	SYS_lseek, SYS_close, SYS_openat, SYS_statx, SYS_getdents64,
	SYS_mkdirat, SYS_renameat, SYS_renameat2,
	SYS_linkat, SYS_unlinkat, SYS_fsync, SYS_fdatasync, SYS_ftruncate,
	SYS_flock, SYS_fcntl, SYS_munmap, SYS_mremap, SYS_mprotect,
	SYS_brk, SYS_madvise, SYS_ppoll, SYS_pselect6, SYS_nanosleep,
	SYS_clock_nanosleep, SYS_clock_gettime, SYS_gettimeofday,
	SYS_getpid, SYS_gettid, SYS_getuid, SYS_geteuid, SYS_getgid,
	SYS_getegid, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn,
	SYS_sigaltstack, SYS_exit, SYS_exit_group, SYS_inotify_init1,
	SYS_inotify_add_watch, SYS_inotify_rm_watch, SYS_getrandom,
	SYS_utimensat, SYS_faccessat, SYS_umask, SYS_readlinkat, SYS_uname,
	SYS_getcwd, SYS_dup, SYS_dup3, SYS_sendto, SYS_sendmsg, SYS_shutdown,
	SYS_futex, SYS_prlimit64, SYS_sched_yield,
	SYS_copy_file_range, SYS_sysinfo,
	SYS_set_robust_list, SYS_restart_syscall, SYS_getsockopt,
	SYS_statfs, SYS_fstatfs,	/* QUOTA's free space */
#ifdef SYS_landlock_restrict_self	/* only ever confines further */
	SYS_landlock_create_ruleset, SYS_landlock_add_rule,
	SYS_landlock_restrict_self,
#endif
#ifdef SYS_faccessat2
	SYS_faccessat2,
#endif
#ifdef SYS_rseq
	SYS_rseq,
#endif
#if defined(__x86_64__) || defined(__aarch64__)
	SYS_newfstatat, SYS_fstat, SYS_mmap, SYS_getrlimit, SYS_fadvise64,
#endif
#ifdef __x86_64__
	SYS_open, SYS_stat, SYS_lstat, SYS_poll, SYS_select, SYS_mkdir,
	SYS_rename, SYS_link, SYS_unlink, SYS_rmdir, SYS_access, SYS_dup2,
	SYS_readlink, SYS_getdents, SYS_time, SYS_arch_prctl,
#endif
#ifdef __arm__	/* 32-bit calls, 64-bit file offsets and times */
	SYS_open, SYS_stat, SYS_lstat, SYS_poll, SYS__newselect, SYS_mkdir,
	SYS_rename, SYS_link, SYS_unlink, SYS_rmdir, SYS_access, SYS_dup2,
	SYS_readlink, SYS_getdents, SYS_fstatat64, SYS_fstat64, SYS_stat64,
	SYS_lstat64, SYS_mmap2, SYS_ugetrlimit, SYS_arm_fadvise64_64,
	SYS_fcntl64, SYS__llseek, SYS_ftruncate64, SYS_statfs64,
	SYS_fstatfs64, SYS_sigreturn, SYS_getuid32, SYS_geteuid32,
	SYS_getgid32, SYS_getegid32, SYS_send,
#ifdef SYS_clock_gettime64
	SYS_clock_gettime64, SYS_clock_nanosleep_time64, SYS_futex_time64,
	SYS_ppoll_time64, SYS_pselect6_time64, SYS_utimensat_time64,
#endif
#endif
};

#define STMT(c, k) (struct sock_filter)BPF_STMT(c, k)
#define JUMP(c, k, t, f) (struct sock_filter)BPF_JUMP(c, k, t, f)

static int
filter_syscalls(void)
{
#ifdef ARCH
	struct sock_filter f[LEN(allowed) * 2 + 16];
	struct sock_fprog prog;
	size_t i, n = 0;

	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data,
	    arch));
	f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data,
	    nr));
	for (i = 0; i < LEN(allowed); i++) {
		f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed[i], 0, 1);
		f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	/* signals to this process only (abort, the sanitizers) */
	f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 1, 0);
	f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 0, 4);
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data,
	    args[0]));
	f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (__u32)getpid(), 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	/* anything else fails as if the kernel did not know it */
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	prog.len = n;
	prog.filter = f;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	logmsg(LOG_NOTICE, "sandbox: the kernel has no seccomp filters; "
	    "system calls are not confined");
	return 0;
#else
	logmsg(LOG_NOTICE, "sandbox: no system call list for this "
	    "architecture; system calls are not confined");
	return 0;
#endif
}

static int
lockdown(void)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_NPROC, &none) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return 0;
}

static int
confine(int stage)
{
	if (!locked) {
		if (lockdown() < 0)
			return -1;
		locked = 1;
	}
	/* Landlock first: seccomp would refuse its system calls */
	if (landlock(stage) < 0)
		return -1;
	if (locked == 1) {
		if (filter_syscalls() < 0)
			return -1;
		locked = 2;
	}
	return 0;
}
#else
static int
confine(int stage)
{
	static int told;

	if (!told++)
		logmsg(LOG_NOTICE, "sandbox: not supported on this system");
	return 0;
}
#endif

void
sandbox_enter(int stage)
{
	limits();
	if (!sandbox)
		return;
	if (stage == SANDBOX_LOGIN && auth_spawns()) {
		logmsg(LOG_INFO, "sandbox: the login runs programs; confined "
		    "after it");
		return;
	}
	if (confine(stage) < 0)
		die("sandbox: %s", strerror(errno));
}

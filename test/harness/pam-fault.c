/*
 * pam_rexecd_fault.so: a PAM module for rexecd's fault tests.  What it does is
 * chosen by its arguments in the service file:
 *
 *   auth=N  acct=N  setcred=N   return N from pam_sm_authenticate / pam_sm_acct_mgmt /
 *                               pam_sm_setcred (default 0, PAM_SUCCESS)
 *   sleep=MS                    pam_sm_authenticate takes MS milliseconds first
 *   hang                        pam_sm_authenticate never returns (a module stuck on
 *                               its server): only rexecd's SIGALRM backstop ends it
 *
 * No PAM headers are needed: the entry points are plain C functions.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int arg(int argc, const char **argv, const char *name, int fallback)
{
	size_t n = strlen(name);
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
			return atoi(argv[i] + n + 1);
	return fallback;
}

static int flag(int argc, const char **argv, const char *name)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int pam_sm_authenticate(void *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	if (flag(argc, argv, "hang"))
		for (;;)
			pause();
	int ms = arg(argc, argv, "sleep", 0);
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	return arg(argc, argv, "auth", 0);
}

int pam_sm_setcred(void *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	return arg(argc, argv, "setcred", 0);
}

int pam_sm_acct_mgmt(void *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	return arg(argc, argv, "acct", 0);
}

// Shell commands that the tests have the remote shell run to show what it was given.

/** The shell's blocked and ignored signals, read with builtins only (no child, so dash's own masking in wait() stays out). */
export const SHELL_SIGNALS = 'while read -r k v; do case $k in SigBlk:|SigIgn:) echo "$k$v";; esac; done < /proc/$$/status';

/** The shell's environment, one variable a line, sorted. */
export const SHELL_ENVIRONMENT = "tr '\\0' '\\n' < /proc/$$/environ | sort";

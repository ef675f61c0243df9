/**
 * File descriptors: duplicating, closing, and the flags a descriptor has when a
 * program is exec'd with it (blocking, inherited) or must not get it (close-on-exec).
 */
import { check, cfunc, libc } from './koffi';

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_NONBLOCK = 0o4000;
const CLOSE_RANGE_CLOEXEC = 4;

const fcntl = cfunc<(fd: number, cmd: number, ...rest: unknown[]) => number>(libc, 'int fcntl(int, int, ...)');
const closeC = cfunc<(fd: number) => number>(libc, 'int close(int)');
const dupC = cfunc<(fd: number) => number>(libc, 'int dup(int)');
const dup2C = cfunc<(from: number, to: number) => number>(libc, 'int dup2(int, int)');
const closeRange = cfunc<(first: number, last: number, flags: number) => number>(libc, 'int close_range(unsigned int, unsigned int, int)');

/** close(2); an error (EBADF, EINTR) leaves nothing to do. */
export function close(fd: number): void {
  closeC(fd);
}

/** A second fd on the same open file (close-on-exec is not inherited by dup). */
export function dup(fd: number): number {
  return check('dup', dupC(fd));
}

export function dup2(from: number, to: number): void {
  if (from !== to) check('dup2', dup2C(from, to));
}

/** Make fd blocking and inheritable across exec: what a program run by inetd expects. */
export function makeInheritableBlocking(fd: number): void {
  const fl = check('fcntl(F_GETFL)', fcntl(fd, F_GETFL));
  if (fl & O_NONBLOCK) check('fcntl(F_SETFL)', fcntl(fd, F_SETFL, 'int', fl & ~O_NONBLOCK));
  const fdf = check('fcntl(F_GETFD)', fcntl(fd, F_GETFD));
  if (fdf & FD_CLOEXEC) check('fcntl(F_SETFD)', fcntl(fd, F_SETFD, 'int', fdf & ~FD_CLOEXEC));
}

/** Mark fd close-on-exec: no program this process starts or becomes inherits it. */
export function setCloseOnExec(fd: number): void {
  const fdf = check('fcntl(F_GETFD)', fcntl(fd, F_GETFD));
  if (!(fdf & FD_CLOEXEC)) check('fcntl(F_SETFD)', fcntl(fd, F_SETFD, 'int', fdf | FD_CLOEXEC));
}

/** Make fd non-blocking (a listening socket handed over by a launcher is blocking). */
export function setNonBlocking(fd: number): void {
  const fl = check('fcntl(F_GETFL)', fcntl(fd, F_GETFL));
  if (!(fl & O_NONBLOCK)) check('fcntl(F_SETFL)', fcntl(fd, F_SETFL, 'int', fl | O_NONBLOCK));
}

/**
 * Mark every fd from `first` up close-on-exec, so that exec leaves the shell with
 * nothing but what it is meant to have, while this process (which may still need
 * to report a failed exec) keeps them until then.
 */
export function closeOnExecFrom(first: number): void {
  check('close_range', closeRange(first, 0xffffffff, CLOSE_RANGE_CLOEXEC));
}

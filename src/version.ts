/** rexecd's version; a unit test keeps it equal to package.json's (a single executable has no package.json beside it). */
export const VERSION = '0.1.0';

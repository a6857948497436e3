// glibc's wide-character classification with a locale object (not exported by Swift's Glibc module): the contacts
// service splits search words with the functions PostgreSQL's lower() and regular expressions use, and compares its
// glibc's version with the one PostgreSQL records for the database's collation.
#include <gnu/libc-version.h>
#include <locale.h>
#include <wctype.h>

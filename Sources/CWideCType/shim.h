// glibc's wide-character classification with a locale object (not exported by Swift's Glibc module): the contacts
// service splits search words with the functions PostgreSQL's lower() and regular expressions use.
#include <locale.h>
#include <wctype.h>

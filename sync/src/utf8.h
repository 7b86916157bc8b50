/*
 * utf8.h — private: strict UTF-8 validation shared by every parser of
 * untrusted text (CSV, vCard, record values).
 */
#ifndef RELASI_UTF8_H
#define RELASI_UTF8_H

#include <stddef.h>

/*
 * Offset of the first byte of s[0..len) that is not part of well-formed
 * UTF-8, or len if all is valid. Overlong forms, surrogates and code points
 * above U+10FFFF are invalid; so is NUL, which would silently cut a C string.
 */
size_t rl_utf8_bad(const unsigned char *s, size_t len);

#endif

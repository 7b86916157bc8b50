/*
 * relasi/vcard.h — vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) for contacts.
 *
 * The parser handles line folding (CRLF or LF followed by space/tab), LF or
 * CRLF line ends, property groups ("item1.TEL"), parameters (TYPE=...,
 * PREF=..., quoted values), case-insensitive names, and the text escapes
 * \n \N \, \; \\. It keeps the properties a contact needs: FN, N, ORG (first
 * component), TITLE, NOTE, TEL, EMAIL, ADR (locality -> city), UID. Other
 * properties (PHOTO, X-...) are skipped. vCard 2.1 (QUOTED-PRINTABLE,
 * CHARSET) is refused with a clear message. Input must be valid UTF-8.
 * Errors name the 1-based line where the problem is. Every TEL and EMAIL
 * of a card is kept, in order; more than RL_MAX_VCARD_VALUES of one kind
 * is an error (RL_ETOOBIG), not a silent cut.
 */
#ifndef RELASI_VCARD_H
#define RELASI_VCARD_H

#include <stddef.h>
#include <stdio.h>

#include "relasi/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rl_vcard {
	char *fn;       /* formatted name; if missing, built from N */
	char *org;      /* first ORG component, NULL if none */
	char *title;
	char *note;
	char *city;     /* ADR locality of the first ADR */
	char *uid;
	char **tel;     /* every TEL in card order (ntel of them, at most
			 * RL_MAX_VCARD_VALUES: a card with more is refused) */
	size_t ntel;
	char **email;   /* likewise every EMAIL */
	size_t nemail;
	long line;      /* line of BEGIN:VCARD */
} rl_vcard;

/*
 * Parse all cards in buf[0..len). On success *cards is an array of *ncards
 * cards owned by the caller (rl_vcard_free_all). A card without FN and
 * without a usable N is an error. RL_EINVALID / RL_ETOOBIG with the line
 * number in the message; nothing is returned on error. len above
 * RL_MAX_VCARD_FILE_BYTES is RL_ETOOBIG.
 */
int rl_vcard_parse(rl_vcard **cards, size_t *ncards, const char *buf, size_t len);

void rl_vcard_free_all(rl_vcard *cards, size_t ncards);

/*
 * Write one card as vCard version 3 or 4: BEGIN, VERSION, FN, N (split at the
 * last space: family;given), ORG, TITLE, TEL, EMAIL, ADR (city only), NOTE,
 * UID, END; values escaped; lines folded at 75 octets without splitting a
 * UTF-8 sequence; CRLF line ends. Returns RL_OK, RL_EINVALID (bad version),
 * RL_EIO.
 */
int rl_vcard_write(FILE *f, const rl_vcard *card, int version);

#ifdef __cplusplus
}
#endif
#endif

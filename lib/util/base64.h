/* The base64 alphabet (RFC 4648 4) and its variants that differ in the 64th
 * character: "/" for MIME and SASL, "," for IMAP's modified UTF-7 (RFC 3501 5.1.3). */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H

/* The value 0..63 of character c, whose 63rd value is written c63; -1 for any other
 * character (padding included). */
int base64_value(unsigned char c, char c63);

#endif

"""One module per mail protocol: IMAP in, SMTP/LMTP in, SMTP out; and the parser."""

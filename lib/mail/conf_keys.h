/* The one table of postern.conf keys, as an X-macro list: each row is
 *
 *   CONF_KEY(name, type, default, min, max, words, zero, doc)
 *
 * conf.h turns the names into enum conf_key (CONF_name), so code names a key as
 * CONF_ipc_timeout and a misspelt name fails the build; conf_defaults.c turns the rows
 * into the table that conf.c checks values against, "postern config" prints and
 * postern.conf(5) documents.  No include guard: include it with CONF_KEY defined.
 *
 *   type     one of enum conf_type (conf.h), without its CONF_ prefix
 *   default  the value when the file does not set the key; may contain $key
 *   min, max bounds, in the type's unit: TIME in seconds, SIZE in bytes, COUNT as
 *            is; for text types the length in bytes, for list types the number of
 *            items (min 0: may be empty); for ENUM, min 0 allows the empty value
 *   words    ENUM: the words allowed, '|' between them; ADDRS, CIDRS: words allowed
 *            besides addresses; NULL otherwise
 *   zero     what 0 (numbers) or an empty value means when min allows it; NULL when
 *            it means nothing special
 *   doc      one line for "postern config" and postern.conf(5)
 *
 * Keep Postfix's name wherever Postfix has the same concept.  Sections follow
 * postern.conf(5). */

/* ---- identity ---- */
CONF_KEY(mail_name, STR, "Postern", 1, 100, NULL, NULL,
         "the mail system's name in banners and bounces")
CONF_KEY(myhostname, HOST, "", 0, 253, NULL, "the system's host name",
         "this host's fully qualified name")
CONF_KEY(mydomain, HOST, "", 0, 253, NULL,
         "myhostname less its first label (all of it when it has one label)",
         "this host's domain")
CONF_KEY(myorigin, HOST, "$myhostname", 1, 253, NULL, NULL,
         "domain appended to bare local senders")
CONF_KEY(mydestination, DOMAINS, "$myhostname, localhost.$mydomain, localhost", 0, 10000,
         NULL, "only myhostname and localhost",
         "domains delivered to system users (local class); .domain matches its subdomains")
CONF_KEY(mynetworks, CIDRS, "host", 0, 10000, "host",
         "no client relays without AUTH",
         "clients trusted to relay: addresses, networks (address/bits), and host: this "
         "host's own interface addresses")
CONF_KEY(inet_interfaces, ADDRS, "all", 1, 64, "all|loopback-only", NULL,
         "listening addresses: all, loopback-only, or IP addresses")

/* ---- files and users ---- */
CONF_KEY(queue_directory, PATH, POSTERN_QUEUEDIR, 1, 1024, NULL, NULL,
         "the queue's top directory")
CONF_KEY(daemon_directory, PATH, "", 0, 1024, NULL,
         "found from where the running program is",
         "where the daemons are")
CONF_KEY(mail_owner, USER, "postern", 1, 32, NULL, NULL,
         "user that owns the queue and runs unprivileged daemons")
CONF_KEY(setgid_group, GROUP, "posterndrop", 1, 32, NULL, NULL,
         "group of maildrop/ for sendmail(1)")
CONF_KEY(default_privs, USER, "nobody", 1, 32, NULL, NULL,
         "rights used for deliveries that would run as root")
CONF_KEY(vmail_user, USER, "vmail", 1, 32, NULL, NULL,
         "user that owns virtual users' mailboxes")
CONF_KEY(maillog_file, PATH, "", 0, 1024, NULL,
         "log to syslog (to standard error in the foreground)",
         "log to this file instead of syslog")
CONF_KEY(maillog_file_compressor, ENUM, "gzip", 0, 1, "gzip|bzip2|xz|zstd",
         "leave rotated log files as they are",
         "program that compresses log files that postern logrotate renamed")
CONF_KEY(syslog_facility, ENUM, "mail", 1, 1,
         "mail|daemon|user|auth|authpriv|local0|local1|local2|local3|local4|local5"
         "|local6|local7", NULL,
         "syslog facility")
CONF_KEY(syslog_name, STR, "postern", 1, 64, NULL, NULL,
         "prefix of every log line's program name")

/* ---- sendmail and pickup ---- */
CONF_KEY(trusted_users, LIST, "root, $mail_owner", 0, 1000, NULL,
         "only the submitter's own address is ever the sender",
         "users whose sendmail -f sender pickup keeps (others send as user@$myorigin)")

/* ---- addresses and routing ---- */
CONF_KEY(recipient_delimiter, STR, "+", 0, 8, NULL, "no address extensions",
         "characters that separate an address extension")
CONF_KEY(alias_maps, MAPS, "", 0, 32, NULL, "no aliases",
         "aliases for local-class domains: local part -> addresses")
CONF_KEY(virtual_alias_maps, MAPS, "", 0, 32, NULL, "no virtual aliases",
         "address or @domain -> addresses, any class")
CONF_KEY(virtual_mailbox_domains, DOMAINS, "", 0, 100000, NULL, "no virtual domains",
         "domains of virtual users (virtual class)")
CONF_KEY(virtual_mailbox_maps, MAPS, "", 0, 32, NULL, "no virtual mailboxes",
         "virtual address or @domain -> Maildir path under virtual_mailbox_base")
CONF_KEY(virtual_mailbox_base, PATH, POSTERN_MAILDIR_BASE, 1, 1024, NULL, NULL,
         "top of the virtual mail store")
CONF_KEY(home_mailbox, RELPATH, "Maildir/", 1, 1024, NULL, NULL,
         "Maildir of a system user, relative to the home directory")
CONF_KEY(relay_domains, DOMAINS, "", 0, 100000, NULL, "no relay domains",
         "domains accepted from anyone and passed on (backup MX)")
CONF_KEY(transport_maps, MAPS, "", 0, 32, NULL, "each class's default transport",
         "domain or address -> transport:nexthop")
CONF_KEY(relayhost, HOSTPORT, "", 0, 300, NULL, "deliver to each domain's MX hosts",
         "send all remote mail through this host (host, host:port, [host] or [host]:port)")
CONF_KEY(expansion_limit, COUNT, "1000", 1, 1000000, NULL, NULL,
         "most addresses one recipient may expand to")
CONF_KEY(auth_password_maps, MAPS, "", 0, 32, NULL, "no virtual user can log in",
         "address -> password hash (crypt(3) format) of virtual users")

/* ---- smtpd ---- */
CONF_KEY(smtpd_banner, STR, "$myhostname ESMTP $mail_name", 1, 400, NULL, NULL,
         "text after 220 in the greeting")
CONF_KEY(message_size_limit, SIZE, "10240000", 0, 1073741824, NULL, "no limit",
         "largest message accepted, bytes")
CONF_KEY(smtpd_recipient_limit, COUNT, "1000", 1, 100000, NULL, NULL,
         "most recipients in one transaction")
CONF_KEY(smtpd_timeout, TIME, "300s", 1, 86400, NULL, NULL,
         "idle time allowed between client commands and data")
CONF_KEY(smtpd_hard_error_limit, COUNT, "20", 1, 1000, NULL, NULL,
         "errors after which the session is closed")
CONF_KEY(smtpd_soft_error_limit, COUNT, "10", 0, 1000, NULL, "delay from the first error",
         "errors after which each reply is delayed")
CONF_KEY(smtpd_error_sleep_time, TIME, "1s", 0, 300, NULL, "no delay",
         "delay per reply past the soft error limit")
CONF_KEY(line_length_limit, COUNT, "2048", 1000, 1048576, NULL, NULL,
         "longest command or message line, bytes with CRLF")
CONF_KEY(smtputf8_enable, BOOL, "yes", 0, 1, NULL, NULL,
         "offer SMTPUTF8")
CONF_KEY(hopcount_limit, COUNT, "50", 1, 1000, NULL, NULL,
         "most Received: headers before a message is a loop")

/* ---- input caps, phase deadlines and the disk reserve (smtpd, pop3d, qmgr) ---- */
CONF_KEY(smtpd_command_deadline, TIME, "60s", 1, 3600, NULL, NULL,
         "time allowed for one command line from its first byte, however it trickles")
CONF_KEY(smtpd_data_deadline, TIME, "900s", 1, 86400, NULL, NULL,
         "time allowed for a whole DATA phase or BDAT sequence")
CONF_KEY(header_size_limit, SIZE, "1048576", 1024, 1073741824, NULL, NULL,
         "largest header section of a message, bytes; larger ones are refused (552)")
CONF_KEY(smtpd_junk_command_limit, COUNT, "100", 1, 100000, NULL, NULL,
         "NOOP, RSET, VRFY, HELP and unknown or malformed commands per session")
CONF_KEY(smtpd_greet_wait, TIME, "6s", 0, 60, NULL,
         "only input already there when the greeting is due",
         "pause before the greeting to clients outside mynetworks; one that talks "
         "during it is refused")
CONF_KEY(smtpd_forbid_unauth_pipelining, BOOL, "yes", 0, 1, NULL, NULL,
         "refuse clients that pipeline commands when PIPELINING was not offered")
CONF_KEY(pop3d_command_deadline, TIME, "60s", 1, 3600, NULL, NULL,
         "time allowed for one POP3 command line from its first byte")
CONF_KEY(pop3d_preauth_deadline, TIME, "120s", 1, 3600, NULL, NULL,
         "time allowed from connect to a successful POP3 login, TLS handshake included")
CONF_KEY(queue_minfree, SIZE, "0", 0, 1099511627776, NULL,
         "1.5 times message_size_limit",
         "free space the queue file system must keep; below it MAIL gets 452")
CONF_KEY(queue_tmp_lifetime, TIME, "1d", 3600, 8640000, NULL, NULL,
         "age at which qmgr removes a file left in the queue's tmp/")

/* ---- tls and auth (smtpd, smtp; pop3d and imapd use the smtpd_tls_*_file pair) ---- */
CONF_KEY(smtpd_tls_cert_file, PATH, "", 0, 1024, NULL, "no TLS in the servers",
         "server certificate (PEM, chain after the leaf) for every server")
CONF_KEY(smtpd_tls_key_file, PATH, "$smtpd_tls_cert_file", 0, 1024, NULL,
         "the key is in smtpd_tls_cert_file",
         "private key (PEM) of smtpd_tls_cert_file")
CONF_KEY(smtpd_tls_security_level, ENUM, "", 0, 1, "none|may|encrypt",
         "may with a certificate, none without",
         "none, may (offer STARTTLS) or encrypt (require it)")
CONF_KEY(smtpd_tls_wrappermode, BOOL, "no", 0, 1, NULL, NULL,
         "TLS from the first byte (port 465) instead of STARTTLS")
CONF_KEY(smtpd_starttls_timeout, TIME, "60s", 1, 3600, NULL, NULL,
         "time allowed for a server TLS handshake")
CONF_KEY(smtpd_sasl_auth_enable, BOOL, "no", 0, 1, NULL, NULL,
         "offer AUTH (PLAIN, LOGIN) checked by the auth service")
CONF_KEY(smtpd_tls_auth_only, BOOL, "yes", 0, 1, NULL, NULL,
         "offer AUTH only under TLS")
CONF_KEY(smtpd_client_auth_required, BOOL, "no", 0, 1, NULL, NULL,
         "refuse MAIL until the client has authenticated")
CONF_KEY(smtpd_sender_login_maps, MAPS, "", 0, 32, NULL,
         "a login may use its own address and its aliases",
         "sender address or @domain -> logins allowed to use it")
CONF_KEY(smtp_tls_security_level, ENUM, "may", 1, 1, "none|may|encrypt|verify", NULL,
         "outbound TLS: none, may, encrypt, verify")
CONF_KEY(smtp_tls_CAfile, PATH, "", 0, 1024, NULL, "the system's CA certificates",
         "CA certificates for outbound verification")
CONF_KEY(smtp_tls_policy_maps, MAPS, "", 0, 32, NULL,
         "smtp_tls_security_level for every destination",
         "destination -> TLS level for outbound mail")
CONF_KEY(smtp_sasl_password_maps, MAPS, "", 0, 32, NULL, "no outbound AUTH",
         "nexthop -> user:password for outbound AUTH")

/* ---- pop3d ---- */
CONF_KEY(pop3d_timeout, TIME, "600s", 1, 86400, NULL, NULL,
         "idle time allowed between POP3 commands, before and after login")
CONF_KEY(pop3d_error_limit, COUNT, "10", 0, 1000, NULL, "no limit",
         "POP3 errors after which the connection is closed")
CONF_KEY(pop3d_tls_wrapper, BOOL, "no", 0, 1, NULL, NULL,
         "TLS from the first byte (port 995) instead of STLS")

/* ---- imapd ---- */
CONF_KEY(imapd_timeout, TIME, "1800s", 1, 86400, NULL, NULL,
         "idle time allowed between IMAP commands after login (IDLE included)")
CONF_KEY(imapd_command_deadline, TIME, "60s", 1, 3600, NULL, NULL,
         "time allowed for one IMAP command from its first byte (plus 1s per 16 KiB "
         "of literal)")
CONF_KEY(imapd_preauth_deadline, TIME, "120s", 1, 3600, NULL, NULL,
         "time allowed from connect to a successful IMAP login, TLS handshake included")
CONF_KEY(imapd_error_limit, COUNT, "10", 0, 1000, NULL, "no limit",
         "IMAP BAD and NO replies after which the connection is closed")
CONF_KEY(imapd_index_cache_limit, SIZE, "64m", 0, 1073741824, NULL, "no index cache",
         "largest IMAP index cache file of one folder (postern-imap-index(5))")
CONF_KEY(imapd_session_connection_limit, COUNT, "100", 1, 10000, NULL, NULL,
         "IMAP connections of one user that one session process serves at once")
CONF_KEY(imapd_tls_wrapper, BOOL, "no", 0, 1, NULL, NULL,
         "TLS from the first byte (port 993) instead of STARTTLS")
CONF_KEY(imapd_loopback_plaintext_login, BOOL, "no", 0, 1, NULL, NULL,
         "allow LOGIN and AUTHENTICATE without TLS from loopback clients")
CONF_KEY(imapd_client_connection_count_limit, COUNT, "50", 0, 100000, NULL, "no limit",
         "connections one client may have open to one IMAP service before login")
CONF_KEY(imapd_client_connection_rate_limit, COUNT, "300", 0, 1000000, NULL, "no limit",
         "connections one client may make to one IMAP service per anvil_rate_time_unit")
CONF_KEY(imapd_client_event_limit_exceptions, CIDRS, "$mynetworks", 0, 10000, "host",
         "no exceptions",
         "clients the imapd connection limits do not apply to")

/* ---- tlsproxy ---- */
CONF_KEY(tlsproxy_connection_limit, COUNT, "5000", 1, 1000000, NULL, NULL,
         "TLS connections one tlsproxy process relays at once (also bounded by its "
         "open-file limit)")
CONF_KEY(tlsproxy_buffer_size, SIZE, "16k", 1024, 1048576, NULL, NULL,
         "bytes tlsproxy buffers for each direction of a connection")

/* ---- login penalties and sender ownership (auth, smtpd, pop3d) ---- */
CONF_KEY(auth_failure_delay, TIME, "1s", 0, 60, NULL, "no delay",
         "wait before a failed login is answered; doubled with each recent failure")
CONF_KEY(auth_failure_max_delay, TIME, "15s", 0, 600, NULL, "no delay",
         "longest wait before a login is answered (and the wait when anvil is down)")
CONF_KEY(auth_client_failure_limit, COUNT, "20", 0, 1000000, NULL, "no limit",
         "failed logins of one client address per anvil_rate_time_unit before its logins fail unchecked")
CONF_KEY(auth_request_timeout, TIME, "5s", 1, 120, NULL, NULL,
         "time smtpd and pop3d give auth for a verdict before a temporary error")
CONF_KEY(smtpd_sender_login_mismatch_allowed, BOOL, "no", 0, 1, NULL, NULL,
         "let an authenticated client use any sender (unsafe: forged senders)")

/* ---- connection limits (anvil(8); smtpd and pop3d -l ask it after accept) ---- */
CONF_KEY(anvil_rate_time_unit, TIME, "60s", 1, 3600, NULL, NULL,
         "the window of connection rates and login failure counts")
CONF_KEY(smtpd_client_connection_count_limit, COUNT, "50", 0, 100000, NULL, "no limit",
         "connections one client may have open to one SMTP service at once")
CONF_KEY(smtpd_client_connection_rate_limit, COUNT, "300", 0, 1000000, NULL, "no limit",
         "connections one client may make to one SMTP service per anvil_rate_time_unit")
CONF_KEY(smtpd_client_event_limit_exceptions, CIDRS, "$mynetworks", 0, 10000, "host",
         "no exceptions",
         "clients the smtpd connection limits do not apply to")
CONF_KEY(pop3d_client_connection_count_limit, COUNT, "50", 0, 100000, NULL, "no limit",
         "connections one client may have open to one POP3 service before login")
CONF_KEY(pop3d_client_connection_rate_limit, COUNT, "300", 0, 1000000, NULL, "no limit",
         "connections one client may make to one POP3 service per anvil_rate_time_unit")
CONF_KEY(pop3d_client_event_limit_exceptions, CIDRS, "$mynetworks", 0, 10000, "host",
         "no exceptions",
         "clients the pop3d connection limits do not apply to")

/* ---- policy at the door (smtpd: access tables, address checks, DNS blocklists) ---- */
CONF_KEY(check_client_access, MAPS, "", 0, 32, NULL, "no client access table",
         "access table for the client: its address, then its networks (a.b.c, a.b, a)")
CONF_KEY(check_helo_access, MAPS, "", 0, 32, NULL, "no HELO access table",
         "access table for the HELO/EHLO name, then its parent domains")
CONF_KEY(check_sender_access, MAPS, "", 0, 32, NULL, "no sender access table",
         "access table for MAIL FROM: address, domain, parent domains, localpart@")
CONF_KEY(check_recipient_access, MAPS, "", 0, 32, NULL, "no recipient access table",
         "access table for RCPT TO: address, domain, parent domains, localpart@")
CONF_KEY(smtpd_reject_non_fqdn_helo_hostname, BOOL, "yes", 0, 1, NULL, NULL,
         "504 5.5.2 to a HELO/EHLO name that is not a fully qualified domain name")
CONF_KEY(smtpd_reject_non_fqdn_sender, BOOL, "yes", 0, 1, NULL, NULL,
         "504 5.5.2 to a sender whose domain is not fully qualified")
CONF_KEY(smtpd_reject_non_fqdn_recipient, BOOL, "yes", 0, 1, NULL, NULL,
         "504 5.5.2 to a recipient whose domain is not fully qualified")
CONF_KEY(smtpd_reject_unknown_sender_domain, BOOL, "yes", 0, 1, NULL, NULL,
         "550 5.1.8 to a sender domain with no MX and no address (450 4.1.8 on DNS failure)")
CONF_KEY(dnsbl_sites, LIST, "", 0, 32, NULL, "no DNS blocklists",
         "DNS blocklists as domain[=filter][*weight], e.g. zen.example=127.0.0.[2..11]*3")
CONF_KEY(dnsbl_threshold, COUNT, "1", 1, 1000000, NULL, NULL,
         "sum of the weights of the listing blocklists at which RCPT is refused")
CONF_KEY(dnsbl_timeout, TIME, "10s", 1, 60, NULL, NULL,
         "time allowed for the answers of all blocklists")
CONF_KEY(dnsbl_ttl, TIME, "1h", 0, 86400, NULL, "no caching",
         "how long a client's blocklist result is kept")
CONF_KEY(header_checks, MAPS, "", 0, 32, NULL, "no header checks",
         "tables for each header field of a message received by smtpd (pcre: usually)")
CONF_KEY(mime_header_checks, MAPS, "$header_checks", 0, 32, NULL, "no MIME header checks",
         "tables for the Content-* and MIME-Version fields of every MIME part")
CONF_KEY(nested_header_checks, MAPS, "$header_checks", 0, 32, NULL,
         "no checks of attached messages' headers",
         "tables for the other fields of attached messages' headers (message/rfc822)")
CONF_KEY(body_checks, MAPS, "", 0, 32, NULL, "no body checks",
         "tables for each body line of each part, text parts decoded (QP, base64)")

/* ---- daemons ---- */
CONF_KEY(max_use, COUNT, "100", 1, 1000000, NULL, NULL,
         "connections a daemon serves before it exits")
CONF_KEY(max_idle, TIME, "100s", 1, 86400, NULL, NULL,
         "idle time after which a daemon exits")
CONF_KEY(default_process_limit, COUNT, "100", 1, 1000, NULL, NULL,
         "process limit for services that give none")
CONF_KEY(ipc_timeout, TIME, "60s", 1, 3600, NULL, NULL,
         "time allowed for one request and its reply between daemons")

/* ---- queue manager ---- */
CONF_KEY(qmgr_message_active_limit, COUNT, "20000", 1, 1000000, NULL, NULL,
         "most messages in active/")
CONF_KEY(local_destination_concurrency_limit, COUNT, "20", 1, 1000, NULL, NULL,
         "parallel local deliveries")
CONF_KEY(default_destination_concurrency_limit, COUNT, "20", 1, 1000, NULL, NULL,
         "parallel deliveries per remote destination")
CONF_KEY(default_destination_failure_limit, COUNT, "5", 0, 1000, NULL, "never pause",
         "connection-level failures in a row after which a destination is paused for "
         "minimal_backoff_time")
CONF_KEY(queue_run_delay, TIME, "300s", 1, 86400, NULL, NULL,
         "interval between scans of deferred/")
CONF_KEY(minimal_backoff_time, TIME, "300s", 1, 604800, NULL, NULL,
         "first retry delay")
CONF_KEY(maximal_backoff_time, TIME, "3600s", 1, 604800, NULL, NULL,
         "longest retry delay")
CONF_KEY(maximal_queue_lifetime, TIME, "5d", 0, 8640000, NULL,
         "bounce after the first failed attempt",
         "age at which an undeliverable message bounces")
CONF_KEY(bounce_queue_lifetime, TIME, "5d", 0, 8640000, NULL,
         "give up after the first failed attempt",
         "the same for bounces")
CONF_KEY(delay_warning_time, TIME, "4h", 0, 8640000, NULL, "never",
         "age at which the sender is warned")
CONF_KEY(bounce_size_limit, SIZE, "50000", 1, 16777216, NULL, NULL,
         "most bytes of the original returned in a bounce")
CONF_KEY(double_bounce_sender, STR, "double-bounce", 1, 64, NULL, NULL,
         "sender of postmaster notices about failed bounces")
CONF_KEY(bounce_notice_recipient, STR, "postmaster", 1, 255, NULL, NULL,
         "who gets failed bounces")

/* ---- smtp client ---- */
CONF_KEY(smtp_destination_port, COUNT, "25", 1, 65535, NULL, NULL,
         "port of remote SMTP servers")
CONF_KEY(dns_servers, ADDRPORTS, "", 0, 3, NULL, "the servers of /etc/resolv.conf",
         "DNS servers (address or [address]:port)")
CONF_KEY(smtp_connect_timeout, TIME, "30s", 1, 3600, NULL, NULL,
         "time allowed to connect")
CONF_KEY(smtp_helo_timeout, TIME, "300s", 1, 86400, NULL, NULL,
         "time allowed for the greeting and EHLO")
CONF_KEY(smtp_data_timeout, TIME, "600s", 1, 86400, NULL, NULL,
         "time allowed for one block of message data")

/* ---- content filtering: milters (smtpd, pickup), after-queue filter (smtpd, pickup, qmgr),
 * Junk folder (local) ---- */
CONF_KEY(content_filter, STR, "", 0, 300, NULL, "no after-queue filter",
         "transport:nexthop that mail received by smtpd or pickup is sent through once "
         "(e.g. smtp:[127.0.0.1]:10024)")
CONF_KEY(junk_headers, STR, "X-Spam-Flag: YES, X-Spam: Yes", 0, 2000, NULL,
         "no message is taken for spam",
         "header fields (\"Name: value\", commas between) that mark a message as spam")
CONF_KEY(junk_folder, STR, "Junk", 0, 200, NULL, "spam is delivered to the inbox",
         "Maildir++ folder, without its leading dot, that local delivers spam into")
CONF_KEY(smtpd_milters, LIST, "", 0, 16, NULL, "no milters",
         "mail filters smtpd asks, in order: inet:host:port or unix:path")
CONF_KEY(non_smtpd_milters, LIST, "", 0, 16, NULL, "no milters",
         "mail filters pickup asks about mail from sendmail(1), in order: inet:host:port "
         "or unix:path")
CONF_KEY(milter_connect_timeout, TIME, "30s", 1, 3600, NULL, NULL,
         "time allowed to connect to a milter and negotiate")
CONF_KEY(milter_command_timeout, TIME, "30s", 1, 3600, NULL, NULL,
         "time allowed for a milter's reply to a command before the message content")
CONF_KEY(milter_content_timeout, TIME, "300s", 1, 86400, NULL, NULL,
         "time allowed for a milter's reply to a header, a body chunk or the end of a "
         "message")
CONF_KEY(milter_default_action, ENUM, "tempfail", 1, 1, "tempfail|accept", NULL,
         "what a milter that is down, slow or talks garbage means for the message")

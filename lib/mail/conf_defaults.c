/* The one table of postern.conf keys, their types and defaults.  postern.conf(5)
 * documents each; "postern config" prints them.  Keep Postfix's name wherever
 * Postfix has the same concept.  An empty myhostname default means "the system's
 * host name" (filled in by conf_load); mydomain defaults to myhostname without its
 * first label. */
#include "conf.h"

const struct conf_default conf_defaults[] = {
    /* ---- identity ---- */
    { "mail_name", CONF_STR, "Postern", "the mail system's name in banners and bounces" },
    { "myhostname", CONF_STR, "", "this host's fully qualified name (default: the system's)" },
    { "mydomain", CONF_STR, "", "this host's domain (default: myhostname less its first label)" },
    { "myorigin", CONF_STR, "$myhostname", "domain appended to bare local senders" },
    { "mydestination", CONF_LIST, "$myhostname, localhost.$mydomain, localhost",
      "domains delivered to system users (local class)" },
    { "mynetworks", CONF_LIST, "127.0.0.0/8, [::1]/128", "clients trusted to relay" },
    { "inet_interfaces", CONF_LIST, "all", "listening addresses: all, loopback-only, or addresses" },

    /* ---- files and users ---- */
    { "queue_directory", CONF_STR, POSTERN_QUEUEDIR, "the queue's top directory" },
    { "daemon_directory", CONF_STR, "", "where the daemons are (default: found relative to the postern command)" },
    { "mail_owner", CONF_STR, "postern", "user that owns the queue and runs unprivileged daemons" },
    { "setgid_group", CONF_STR, "posterndrop", "group of maildrop/ for sendmail(1)" },
    { "default_privs", CONF_STR, "nobody", "rights used for deliveries that would run as root" },
    { "vmail_user", CONF_STR, "vmail", "user that owns virtual users' mailboxes" },
    { "maillog_file", CONF_STR, "", "log to this file instead of syslog" },
    { "syslog_facility", CONF_STR, "mail", "syslog facility" },
    { "syslog_name", CONF_STR, "postern", "prefix of every log line's program name" },

    /* ---- addresses and routing ---- */
    { "recipient_delimiter", CONF_STR, "+", "characters that separate an address extension" },
    { "alias_maps", CONF_STR, "", "aliases for local-class domains: local part -> addresses" },
    { "virtual_alias_maps", CONF_STR, "", "address or @domain -> addresses, any class" },
    { "virtual_mailbox_domains", CONF_LIST, "", "domains of virtual users (virtual class)" },
    { "virtual_mailbox_maps", CONF_STR, "", "virtual address or @domain -> Maildir path under virtual_mailbox_base" },
    { "virtual_mailbox_base", CONF_STR, POSTERN_MAILDIR_BASE, "top of the virtual mail store" },
    { "home_mailbox", CONF_STR, "Maildir/", "Maildir of a system user, relative to the home directory" },
    { "relay_domains", CONF_LIST, "", "domains accepted from anyone and passed on (backup MX)" },
    { "transport_maps", CONF_STR, "", "domain or address -> transport:nexthop" },
    { "relayhost", CONF_STR, "", "send all remote mail through this host ([host]:port)" },
    { "expansion_limit", CONF_INT, "1000", "most addresses one recipient may expand to" },
    { "auth_password_maps", CONF_STR, "", "address -> password hash (crypt(3) format) of virtual users" },

    /* ---- smtpd ---- */
    { "smtpd_banner", CONF_STR, "$myhostname ESMTP $mail_name", "text after 220 in the greeting" },
    { "message_size_limit", CONF_SIZE, "10240000", "largest message accepted, bytes" },
    { "smtpd_recipient_limit", CONF_INT, "1000", "most recipients in one transaction" },
    { "smtpd_timeout", CONF_TIME, "300s", "idle time allowed between client commands and data" },
    { "smtpd_hard_error_limit", CONF_INT, "20", "errors after which the session is closed" },
    { "smtpd_soft_error_limit", CONF_INT, "10", "errors after which each reply is delayed" },
    { "smtpd_error_sleep_time", CONF_TIME, "1s", "delay per reply past the soft error limit" },
    { "line_length_limit", CONF_INT, "2048", "longest command or message line, bytes with CRLF" },
    { "smtputf8_enable", CONF_BOOL, "yes", "offer SMTPUTF8" },
    { "hopcount_limit", CONF_INT, "50", "most Received: headers before a message is a loop" },

    /* ---- tls and auth (smtpd, smtp; pop3d and imapd use the smtpd_tls_*_file pair) ---- */
    { "smtpd_tls_cert_file", CONF_STR, "", "server certificate (PEM, chain after the leaf) for every server" },
    { "smtpd_tls_key_file", CONF_STR, "$smtpd_tls_cert_file", "private key (PEM) of smtpd_tls_cert_file" },
    { "smtpd_tls_security_level", CONF_STR, "", "none, may (offer STARTTLS) or encrypt (require it); empty: may with a certificate" },
    { "smtpd_tls_wrappermode", CONF_BOOL, "no", "TLS from the first byte (port 465) instead of STARTTLS" },
    { "smtpd_starttls_timeout", CONF_TIME, "60s", "time allowed for a server TLS handshake" },
    { "smtpd_sasl_auth_enable", CONF_BOOL, "no", "offer AUTH (PLAIN, LOGIN) checked by the auth service" },
    { "smtpd_tls_auth_only", CONF_BOOL, "yes", "offer AUTH only under TLS" },
    { "smtpd_client_auth_required", CONF_BOOL, "no", "refuse MAIL until the client has authenticated" },
    { "smtpd_sender_login_maps", CONF_STR, "", "sender address or @domain -> logins allowed to use it" },
    { "smtp_tls_security_level", CONF_STR, "may", "outbound TLS: none, may, encrypt, verify" },
    { "smtp_tls_CAfile", CONF_STR, "", "CA certificates for outbound verification (default: the system's)" },
    { "smtp_tls_policy_maps", CONF_STR, "", "destination -> TLS level for outbound mail" },
    { "smtp_sasl_password_maps", CONF_STR, "", "nexthop -> user:password for outbound AUTH" },

    /* ---- pop3d ---- */
    { "pop3d_timeout", CONF_TIME, "600s", "idle time allowed between POP3 commands, before and after login" },
    { "pop3d_error_limit", CONF_INT, "10", "POP3 errors after which the connection is closed" },
    { "pop3d_tls_wrapper", CONF_BOOL, "no", "TLS from the first byte (port 995) instead of STLS" },

    /* ---- daemons ---- */
    { "max_use", CONF_INT, "100", "connections a daemon serves before it exits" },
    { "max_idle", CONF_TIME, "100s", "idle time after which a daemon exits" },
    { "default_process_limit", CONF_INT, "100", "process limit for services that give none" },
    { "ipc_timeout", CONF_TIME, "60s", "time allowed for one request between daemons" },

    /* ---- queue manager ---- */
    { "qmgr_message_active_limit", CONF_INT, "20000", "most messages in active/" },
    { "local_destination_concurrency_limit", CONF_INT, "20", "parallel local deliveries" },
    { "default_destination_concurrency_limit", CONF_INT, "20", "parallel deliveries per remote destination" },
    { "default_destination_failure_limit", CONF_INT, "5", "connection-level failures in a row after which a destination is paused for minimal_backoff_time (0: never)" },
    { "queue_run_delay", CONF_TIME, "300s", "interval between scans of deferred/" },
    { "minimal_backoff_time", CONF_TIME, "300s", "first retry delay" },
    { "maximal_backoff_time", CONF_TIME, "3600s", "longest retry delay" },
    { "maximal_queue_lifetime", CONF_TIME, "5d", "age at which an undeliverable message bounces" },
    { "bounce_queue_lifetime", CONF_TIME, "5d", "the same for bounces" },
    { "delay_warning_time", CONF_TIME, "4h", "age at which the sender is warned (0: never)" },
    { "bounce_size_limit", CONF_SIZE, "50000", "most bytes of the original returned in a bounce" },
    { "double_bounce_sender", CONF_STR, "double-bounce", "sender of postmaster notices about failed bounces" },
    { "bounce_notice_recipient", CONF_STR, "postmaster", "who gets failed bounces" },

    /* ---- smtp client ---- */
    { "smtp_destination_port", CONF_INT, "25", "port of remote SMTP servers" },
    { "dns_servers", CONF_LIST, "", "DNS servers (address or [address]:port) instead of /etc/resolv.conf" },
    { "smtp_connect_timeout", CONF_TIME, "30s", "time allowed to connect" },
    { "smtp_helo_timeout", CONF_TIME, "300s", "time allowed for the greeting and EHLO" },
    { "smtp_data_timeout", CONF_TIME, "600s", "time allowed for one block of message data" },
};

const size_t conf_ndefaults = sizeof(conf_defaults) / sizeof(conf_defaults[0]);

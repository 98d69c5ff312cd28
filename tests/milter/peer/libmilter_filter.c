/*
 * A test peer linked with libmilter, the reference implementation of the
 * filter side: the MTA side of proto/milter's codec is tested against it.
 * Never linked into a program that ships.
 *
 *   test-libmilter-filter SOCKET      e.g. inet:10025@127.0.0.1
 *
 * It asks for macros with smfi_setsymlist, refuses a sender containing
 * "reject" with smfi_setreply, tempfails a recipient containing "tempfail",
 * and at end of message makes one modification of every kind.
 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3) {
    (void)f2;
    (void)f3;
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR |
                 SMFIF_DELRCPT | SMFIF_CHGFROM | SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
    (void)f1;
    *pf1 = 0; /* every step, every reply: the test reads one reply per command */
    *pf2 = 0;
    *pf3 = 0;
    if (smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen} i") != MI_SUCCESS) return SMFIS_REJECT;
    return SMFIS_CONTINUE;
}

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr) {
    (void)ctx;
    (void)addr;
    return strcmp(host, "refused.example") == 0 ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}

static sfsistat on_envfrom(SMFICTX *ctx, char **argv) {
    if (strstr(argv[0], "reject") != NULL) {
        smfi_setreply(ctx, "550", "5.7.1", "sender refused, 100%% sure");
        return SMFIS_REJECT;
    }
    return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(SMFICTX *ctx, char **argv) {
    (void)ctx;
    return strstr(argv[0], "tempfail") != NULL ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}

static sfsistat on_header(SMFICTX *ctx, char *name, char *value) {
    (void)ctx;
    (void)name;
    (void)value;
    return SMFIS_CONTINUE;
}

static sfsistat on_eom(SMFICTX *ctx) {
    const char *author = smfi_getsymval(ctx, "{auth_authen}");
    if (smfi_addheader(ctx, "X-Added", author ? (char *)author : "none") != MI_SUCCESS ||
        smfi_insheader(ctx, 0, "X-Inserted", "top") != MI_SUCCESS ||
        smfi_chgheader(ctx, "Subject", 1, "changed") != MI_SUCCESS ||
        smfi_addrcpt(ctx, "<added@example.org>") != MI_SUCCESS ||
        smfi_addrcpt_par(ctx, "<param@example.org>", "NOTIFY=NEVER") != MI_SUCCESS ||
        smfi_delrcpt(ctx, "<bob@example.org>") != MI_SUCCESS ||
        smfi_chgfrom(ctx, "<new-sender@example.org>", "SIZE=10") != MI_SUCCESS ||
        smfi_progress(ctx) != MI_SUCCESS ||
        smfi_replacebody(ctx, (unsigned char *)"new body\r\n", 10) != MI_SUCCESS ||
        smfi_quarantine(ctx, "held for review") != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    return SMFIS_ACCEPT;
}

int main(int argc, char **argv) {
    struct smfiDesc desc;
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = "test-libmilter-filter";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                      SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_CHGFROM | SMFIF_QUARANTINE |
                      SMFIF_SETSYMLIST;
    desc.xxfi_connect = on_connect;
    desc.xxfi_envfrom = on_envfrom;
    desc.xxfi_envrcpt = on_envrcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eom = on_eom;
    desc.xxfi_negotiate = on_negotiate;
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
        fprintf(stderr, "cannot set up %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "ready\n");
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}

/*
 * .npz archives (zip files of .npy entries), as np.savez writes them: only
 * stored (uncompressed) entries are read, which is what np.savez produces;
 * np.savez_compressed archives are refused with a message saying what to do
 * instead. Zip64 records, which np.savez always writes for its entries, are
 * understood.
 */

struct npz_entry {
    char *name;          /* without the .npy suffix, NUL-terminated */
    const uint8_t *data; /* the entry's .npy image */
    uint64_t len;
};

struct npz {
    uint8_t *file; /* the whole archive, read into memory */
    uint64_t size;
    struct npz_entry *entries;
    uint64_t count;
};

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

__attribute__((noreturn)) static void die_npz(const struct ctx *c, const char *path, const char *what) {
    die(c, "%s: %s", path, what);
}

/* Bounds check: [off, off + n) lies inside the archive. */
static int npz_in(const struct npz *z, uint64_t off, uint64_t n) { return off <= z->size && n <= z->size - off; }

/* Reads the whole file at `path` into memory. */
static uint8_t *read_file(const struct ctx *c, const char *path, uint64_t *size_out) {
    int fd = plat_open_read(path);
    if (fd < 0) {
        const char *why = plat_strerror(fd);
        die(c, "cannot open %s: %s", path, why ? why : "open failed");
    }
    int64_t size = plat_file_size(fd);
    if (size < 0) die(c, "cannot read %s: cannot find its size", path);
    uint8_t *buf = plat_alloc((uint64_t)size);
    if (!buf) die(c, "%s: out of memory reading %u bytes", path, (uint64_t)size);
    struct src s = {fd, 0, 0, 0, path, 0, 0};
    if (src_read(c, &s, buf, (uint64_t)size) != (uint64_t)size) die(c, "cannot read %s: it shrank while reading", path);
    plat_close(fd);
    *size_out = (uint64_t)size;
    return buf;
}

static void npz_open(const struct ctx *c, const char *path, struct npz *z) {
    z->file = read_file(c, path, &z->size);
    const uint8_t *f = z->file;

    /* The end-of-central-directory record: 22 bytes plus a comment of up to
       65535 bytes at the end of the file. */
    if (z->size < 22) die_npz(c, path, "not a .npz archive (too short)");
    uint64_t eocd = z->size - 22, stop = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0;
    while (le32(f + eocd) != 0x06054b50) {
        if (eocd == stop) die_npz(c, path, "not a .npz archive (no zip directory)");
        eocd--;
    }
    uint64_t count = le16(f + eocd + 10), cd_off = le32(f + eocd + 16);
    if (count == 0xffff || cd_off == 0xffffffff) {
        /* Zip64: a locator just before points at the zip64 record. */
        if (eocd < 20 || le32(f + eocd - 20) != 0x07064b50) die_npz(c, path, "bad zip64 directory locator");
        uint64_t rec = le64(f + eocd - 20 + 8);
        if (!npz_in(z, rec, 56) || le32(f + rec) != 0x06064b50) die_npz(c, path, "bad zip64 directory record");
        count = le64(f + rec + 32);
        cd_off = le64(f + rec + 48);
    }
    if (count > z->size / 46) die_npz(c, path, "corrupt zip directory (entry count)");
    z->count = count;
    z->entries = plat_alloc(count * sizeof(struct npz_entry));
    if (!z->entries) die(c, "out of memory");

    uint64_t p = cd_off;
    for (uint64_t k = 0; k < count; k++) {
        if (!npz_in(z, p, 46) || le32(f + p) != 0x02014b50) die_npz(c, path, "corrupt zip directory");
        uint32_t flags = le16(f + p + 8), method = le16(f + p + 10);
        uint64_t csize = le32(f + p + 20), usize = le32(f + p + 24);
        uint32_t nlen = le16(f + p + 28), xlen = le16(f + p + 30), clen = le16(f + p + 32);
        uint64_t local = le32(f + p + 42);
        if (!npz_in(z, p + 46, (uint64_t)nlen + xlen + clen)) die_npz(c, path, "corrupt zip directory");
        const uint8_t *name = f + p + 46;
        /* Zip64 extra field: the 64-bit values of the fields saturated above. */
        for (const uint8_t *x = name + nlen, *xe = x + xlen; x + 4 <= xe;) {
            uint32_t id = le16(x), sz = le16(x + 2);
            const uint8_t *v = x + 4, *ve = v + sz;
            if (ve > xe) break;
            if (id == 1) {
                if (usize == 0xffffffff && v + 8 <= ve) usize = le64(v), v += 8;
                if (csize == 0xffffffff && v + 8 <= ve) csize = le64(v), v += 8;
                if (local == 0xffffffff && v + 8 <= ve) local = le64(v), v += 8;
            }
            x = ve;
        }
        struct npz_entry *e = &z->entries[k];
        e->name = plat_alloc((uint64_t)nlen + 1);
        if (!e->name) die(c, "out of memory");
        memcpy(e->name, name, nlen);
        e->name[nlen] = 0;
        if (nlen > 4 && cstr_eq(e->name + nlen - 4, ".npy")) e->name[nlen - 4] = 0;
        if (flags & 1) die(c, "%s: entry '%s' is encrypted", path, e->name);
        if (method != 0)
            die(c,
                "%s: entry '%s' is compressed, and compiled models read only uncompressed .npz archives; "
                "save with np.savez (not np.savez_compressed) or give each input as --input NAME=FILE.npy",
                path, e->name);
        if (csize != usize) die(c, "%s: entry '%s' is corrupt (stored sizes differ)", path, e->name);
        if (!npz_in(z, local, 30) || le32(f + local) != 0x04034b50)
            die(c, "%s: entry '%s' is corrupt (bad local header)", path, e->name);
        uint64_t data = local + 30 + le16(f + local + 26) + le16(f + local + 28);
        if (!npz_in(z, data, csize)) die(c, "%s: entry '%s' is truncated", path, e->name);
        e->data = f + data;
        e->len = csize;
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
}

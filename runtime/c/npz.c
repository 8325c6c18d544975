/*
 * .npz archives (zip files of .npy entries), as np.savez writes them: the
 * directory is read and checked from the end of the file first; only
 * stored (uncompressed) entries are read, which is what np.savez produces;
 * np.savez_compressed archives are refused with a message saying what to do
 * instead. Zip64 records, which np.savez always writes for its entries, are
 * understood.
 */

struct npz_entry {
    char *name;    /* without the .npy suffix, NUL-terminated */
    uint8_t *data; /* the entry's .npy image, read after the directory was checked */
    uint64_t len;
    uint64_t at;   /* where the image starts in the archive */
};

struct npz {
    uint64_t size; /* of the archive */
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

/* Reads the n bytes at `off` of the archive (checked to lie inside it). */
static void npz_read_at(const struct ctx *c, int fd, const char *path, uint64_t off, void *buf, uint64_t n) {
    long r = plat_seek(fd, off);
    if (r < 0) {
        const char *why = plat_strerror(r);
        die(c, "cannot read %s: %s", path, why ? why : "seek failed");
    }
    struct src s = {fd, 0, 0, 0, path, 0, 0};
    if (src_read(c, &s, buf, n) != n) die(c, "cannot read %s: it shrank while reading", path);
}

/* Memory for n bytes of the archive, or a message naming it. */
static uint8_t *npz_alloc(const struct ctx *c, const char *path, uint64_t n) {
    uint8_t *p = plat_alloc(n);
    if (!p) die(c, "%s: out of memory reading %u bytes", path, n);
    return p;
}

/*
 * Opens the archive: its end record and central directory are read and
 * every entry checked (names, stored and uncompressed, sizes and local
 * headers inside the file) before any entry's data is read; then each
 * entry's image is read into its own buffer.
 */
static void npz_open(const struct ctx *c, const char *path, struct npz *z) {
    int fd = plat_open_read(path);
    if (fd < 0) {
        const char *why = plat_strerror(fd);
        die(c, "cannot open %s: %s", path, why ? why : "open failed");
    }
    int64_t size = plat_file_size(fd);
    if (size < 0) die(c, "cannot read %s: cannot find its size", path);
    z->size = (uint64_t)size;

    /* The end-of-central-directory record: 22 bytes plus a comment of up to
       65535 bytes at the end of the file, read on its own. */
    if (z->size < 22) die_npz(c, path, "not a .npz archive (too short)");
    uint64_t tail_len = z->size < 22 + 65535 ? z->size : 22 + 65535, tail_at = z->size - tail_len;
    uint8_t *tail = npz_alloc(c, path, tail_len);
    npz_read_at(c, fd, path, tail_at, tail, tail_len);
    uint64_t eocd = tail_len - 22;
    while (le32(tail + eocd) != 0x06054b50) {
        if (eocd == 0) die_npz(c, path, "not a .npz archive (no zip directory)");
        eocd--;
    }
    uint64_t count = le16(tail + eocd + 10), cd_size = le32(tail + eocd + 12), cd_off = le32(tail + eocd + 16);
    if (count == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) {
        /* Zip64: a locator just before points at the zip64 record. */
        if (eocd < 20 || le32(tail + eocd - 20) != 0x07064b50) die_npz(c, path, "bad zip64 directory locator");
        uint64_t rec = le64(tail + eocd - 20 + 8);
        uint8_t r[56];
        if (!npz_in(z, rec, 56)) die_npz(c, path, "bad zip64 directory record");
        npz_read_at(c, fd, path, rec, r, 56);
        if (le32(r) != 0x06064b50) die_npz(c, path, "bad zip64 directory record");
        count = le64(r + 32);
        cd_size = le64(r + 40);
        cd_off = le64(r + 48);
    }
    plat_free(tail, tail_len);
    if (!npz_in(z, cd_off, cd_size) || count > cd_size / 46) die_npz(c, path, "corrupt zip directory (its size)");
    uint8_t *f = npz_alloc(c, path, cd_size + 1);
    npz_read_at(c, fd, path, cd_off, f, cd_size);
    z->count = count;
    z->entries = plat_alloc(count * sizeof(struct npz_entry) + 1);
    if (!z->entries) die(c, "out of memory");

    uint64_t p = 0;
    for (uint64_t k = 0; k < count; k++) {
        if (p > cd_size || cd_size - p < 46 || le32(f + p) != 0x02014b50) die_npz(c, path, "corrupt zip directory");
        uint32_t flags = le16(f + p + 8), method = le16(f + p + 10);
        uint64_t csize = le32(f + p + 20), usize = le32(f + p + 24);
        uint32_t nlen = le16(f + p + 28), xlen = le16(f + p + 30), clen = le16(f + p + 32);
        uint64_t local = le32(f + p + 42);
        if (cd_size - p - 46 < (uint64_t)nlen + xlen + clen) die_npz(c, path, "corrupt zip directory");
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
        /* The local header's name and extra lengths come with the data. */
        if (!npz_in(z, local, (uint64_t)30 + csize)) die(c, "%s: entry '%s' is truncated", path, e->name);
        e->at = local;
        e->len = csize;
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
    plat_free(f, cd_size + 1);

    /* Every entry fits: now the data. */
    for (uint64_t k = 0; k < count; k++) {
        struct npz_entry *e = &z->entries[k];
        uint8_t h[30];
        npz_read_at(c, fd, path, e->at, h, 30);
        if (le32(h) != 0x04034b50) die(c, "%s: entry '%s' is corrupt (bad local header)", path, e->name);
        uint64_t data = e->at + 30 + le16(h + 26) + le16(h + 28);
        if (!npz_in(z, data, e->len)) die(c, "%s: entry '%s' is truncated", path, e->name);
        e->data = npz_alloc(c, path, e->len);
        npz_read_at(c, fd, path, data, e->data, e->len);
    }
    plat_close(fd);
}

/* Frees the entries' images once they are read. */
static void npz_free_data(struct npz *z) {
    for (uint64_t k = 0; k < z->count; k++) plat_free(z->entries[k].data, z->entries[k].len);
}

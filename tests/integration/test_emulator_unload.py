"""The emulator's UNLOAD seen from S3 with boto3 as the witness: part files appear one by one while the
statement runs, each complete when first listed, the manifest last and consistent with the files; PARTITION BY
keeps every row in its partition and in order; the Parquet footers (read here with a small Thrift compact
reader, independent of DuckDB) carry the physical and logical types the emulator documents and the row counts
the manifest claims."""
import json
import struct
import threading
import time
import unittest

import boto3
import botocore.config

from emulator_fixture import Emulator, identities

CONFIG = identities([("admin", "AKIDADMIN", "admin-secret", ["*"])], account="111122223333",
                    roles=[{"name": "unload", "allow": ["s3:*"], "default": True}],
                    workgroups=["demo"], buckets=["staging"])

# Parquet's enums (parquet.thrift)
PHYSICAL = {0: "BOOLEAN", 1: "INT32", 2: "INT64", 3: "INT96", 4: "FLOAT", 5: "DOUBLE", 6: "BYTE_ARRAY",
            7: "FIXED_LEN_BYTE_ARRAY"}
CONVERTED = {0: "UTF8", 5: "DECIMAL", 6: "DATE", 9: "TIMESTAMP_MILLIS", 10: "TIMESTAMP_MICROS", 15: "INT_8",
             16: "INT_16", 17: "INT_32", 18: "INT_64"}


class Compact:
    """Thrift's compact protocol, just enough to read a Parquet footer: structs become {field id: value}."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self):
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def zigzag(self):
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t):
        if t in (1, 2):
            return t == 1
        if t == 3:
            return struct.unpack("b", bytes([self.byte()]))[0]
        if t in (4, 5, 6):
            return self.zigzag()
        if t == 7:
            self.pos += 8
            return struct.unpack("<d", self.data[self.pos - 8:self.pos])[0]
        if t == 8:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n:self.pos]
        if t in (9, 10):
            h = self.byte()
            size, et = h >> 4, h & 0x0F
            if size == 15:
                size = self.varint()
            return [(self.byte() == 1) if et in (1, 2) else self.value(et) for _ in range(size)]
        if t == 11:
            size = self.varint()
            kv = self.byte() if size else 0
            return {self.value(kv >> 4): self.value(kv & 0x0F) for _ in range(size)}
        if t == 12:
            return self.struct()
        raise ValueError("thrift compact type %d" % t)

    def struct(self):
        out, last = {}, 0
        while True:
            h = self.byte()
            if h == 0:
                return out
            delta, t = h >> 4, h & 0x0F
            fid = last + delta if delta else self.zigzag()
            out[fid] = self.value(t)
            last = fid


def parquet_footer(data):
    """FileMetaData of a whole Parquet file's bytes: (num_rows, {column: schema element fields})."""
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", "not a Parquet file"
    n = struct.unpack("<I", data[-8:-4])[0]
    meta = Compact(data[-8 - n:-8]).struct()
    cols = {e[4].decode(): e for e in meta[2][1:]}  # element 0 is the root
    return meta[3], cols


def first_column_ranges(data):
    """(min, max) of the first column, an INT64, in each row group, from the footer's statistics."""
    n = struct.unpack("<I", data[-8:-4])[0]
    meta = Compact(data[-8 - n:-8]).struct()
    out = []
    for rg in meta[4]:
        stats = rg[1][0][3][12]  # RowGroup.columns[0].meta_data.statistics
        out.append((struct.unpack("<q", stats[6])[0], struct.unpack("<q", stats[5])[0]))
    return out


def column_type(e):
    """A schema element as text: physical type, its length, converted type and the logical type's details."""
    out = [PHYSICAL[e[1]]]
    if 2 in e:
        out.append("len=%d" % e[2])
    if 6 in e:
        out.append(CONVERTED.get(e[6], str(e[6])))
    if 8 in e:
        out.append("(%d,%d)" % (e[8], e.get(7, 0)))
    logical = e.get(10, {})
    if 8 in logical:  # TimestampType {1: isAdjustedToUTC, 2: unit {1 MILLIS, 2 MICROS, 3 NANOS}}
        ts = logical[8]
        out.append("utc" if ts.get(1) else "local")
        out.append({1: "millis", 2: "micros", 3: "nanos"}[next(iter(ts.get(2, {2: {}})))])
    return " ".join(out)


class UnloadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=["--sample", "sales:rows=3000", "--slices", "6", "--seed", "5"], config=CONFIG,
                           lifetime=300)
        kw = dict(endpoint_url=cls.emu.endpoint, region_name="us-east-1", aws_access_key_id="AKIDADMIN",
                  aws_secret_access_key="admin-secret")
        cls.s3 = boto3.client("s3", config=botocore.config.Config(signature_version="s3v4"), **kw)
        cls.rsd = boto3.client("redshift-data", **kw)

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def execute(self, sql):
        return self.rsd.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]

    def wait(self, sid, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self.rsd.describe_statement(Id=sid)
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                return d
            time.sleep(0.02)
        self.fail("statement %s did not finish" % sid)

    def run_sql(self, sql):
        d = self.wait(self.execute(sql))
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        return d

    def listing(self, prefix):
        """{key: (size, etag)} of every object under prefix."""
        out, token = {}, None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            r = self.s3.list_objects_v2(Bucket="staging", Prefix=prefix, **kw)
            for o in r.get("Contents", []):
                out[o["Key"]] = (o["Size"], o["ETag"])
            token = r.get("NextContinuationToken")
            if not token:
                return out

    def get(self, key):
        return self.s3.get_object(Bucket="staging", Key=key)["Body"].read()

    def manifest(self, prefix):
        return json.loads(self.get(prefix + "manifest"))

    def check_manifest(self, prefix, final, rows):
        """The manifest names exactly the data files, with their sizes and footers' row counts."""
        m = self.manifest(prefix)
        urls = [e["url"] for e in m["entries"]]
        self.assertEqual(sorted(urls), sorted("s3://staging/" + k for k in final if not k.endswith("manifest")))
        total = 0
        for e in m["entries"]:
            key = e["url"][len("s3://staging/"):]
            data = self.get(key)
            self.assertEqual(e["meta"]["content_length"], len(data), key)
            self.assertEqual(e["meta"]["content_length"], final[key][0], key)
            num_rows, _ = parquet_footer(data)
            self.assertEqual(e["meta"]["record_count"], num_rows, key)
            total += num_rows
        self.assertEqual(total, rows)
        return m

    def test_parts_appear_while_running_and_manifest_last(self):
        prefix = "progressive/run/"
        rows = 1_000_000
        # a query big enough that writing its 6 slice files takes about a second or two
        sid = self.execute("unload ('select g as id, md5(cast(g as varchar)) as h, g * 0.5 as x from "
                           "generate_series(1, %d) as t(g)') to 's3://staging/%s' iam_role default format parquet "
                           "manifest" % (rows, prefix))
        seen = []  # (listing, status of the statement after it)
        while True:
            lst = self.listing(prefix)
            status = self.rsd.describe_statement(Id=sid)["Status"]
            seen.append((lst, status))
            if status in ("FINISHED", "FAILED", "ABORTED"):
                break
        self.assertEqual(status, "FINISHED", self.rsd.describe_statement(Id=sid).get("Error"))
        final = self.listing(prefix)
        parts = sorted(k for k in final if not k.endswith("manifest"))
        self.assertEqual(parts, [prefix + "%04d_part_00.parquet" % s for s in range(6)])
        self.assertIn(prefix + "manifest", final)
        running = [lst for lst, st in seen if st in ("SUBMITTED", "PICKED", "STARTED")]
        # some listing during the run showed completed parts but not yet all of them
        self.assertTrue(any(0 < len(lst) < len(parts) for lst in running),
                        "no listing caught the UNLOAD between its first and last part: %s"
                        % [sorted(lst) for lst in running])
        for lst, _ in seen:
            for key, (size, etag) in lst.items():
                # every object, whenever listed, is already the complete final object (never partial)
                self.assertEqual((size, etag), final[key], key)
            if prefix + "manifest" in lst:
                self.assertEqual(set(lst), set(final), "the manifest was visible before every part")
        for lst in running:
            self.assertNotIn(prefix + "manifest", lst)
        # parts appear in order, slice after slice, and hold the rows in order: ids 1..rows, contiguous
        counts = [len(lst) for lst, _ in seen]
        self.assertEqual(counts, sorted(counts))
        self.check_manifest(prefix, final, rows)
        ranges = [r for k in parts for r in first_column_ranges(self.get(k))]
        self.assertEqual(ranges[0][0], 1)
        self.assertEqual(ranges[-1][1], rows)
        for (_, hi), (lo, _) in zip(ranges, ranges[1:]):
            self.assertEqual(lo, hi + 1, "row groups out of order: %s" % ranges)

    def test_partition_by_keeps_rows_in_their_partition_and_order(self):
        prefix = "parts/run/"
        # grp is NULL for some rows (the Hive default partition); the query orders by sale_id descending
        self.run_sql("unload ('select sale_id, case when sale_id %% 7 = 0 then null else sale_id %% 3 end as grp, "
                     "unit_price from sales order by sale_id desc') to 's3://staging/%s' iam_role default "
                     "format parquet partition by (grp) include manifest" % prefix)
        final = self.listing(prefix)
        m = self.check_manifest(prefix, final, 3000)
        # in text, the rows themselves: each partition holds its rows, in the query's order
        self.run_sql("unload ('select sale_id, sale_id % 3 as grp from sales order by sale_id desc') to "
                     "'s3://staging/parts/off/' iam_role default format csv partition by (grp) parallel off")
        off = self.listing("parts/off/")
        self.assertEqual(sorted(off), ["parts/off/grp=%d/000" % g for g in range(3)])
        for g in range(3):
            ids = [int(x) for x in self.get("parts/off/grp=%d/000" % g).decode().split()]
            self.assertEqual(ids, [i for i in range(3000, 0, -1) if i % 3 == g], "partition %d" % g)
        groups = {}
        for e in m["entries"]:
            key = e["url"][len("s3://staging/"):]
            part = key[len(prefix):].split("/")[0]
            groups.setdefault(part, []).append(key)
        self.assertEqual(sorted(groups), ["grp=0", "grp=1", "grp=2", "grp=__HIVE_DEFAULT_PARTITION__"])
        for part, keys in groups.items():
            # slices of one partition: 6 files at most, named per slice
            self.assertLessEqual(len(keys), 6)
            for k in keys:
                self.assertRegex(k, r"/%s/\d{4}_part_00\.parquet$" % part)
        # the footers' row counts per partition: every seventh row is NULL, the rest split by % 3
        counts = {p: sum(parquet_footer(self.get(k))[0] for k in keys) for p, keys in groups.items()}
        expect = {"grp=__HIVE_DEFAULT_PARTITION__": len([i for i in range(1, 3001) if i % 7 == 0])}
        for g in range(3):
            expect["grp=%d" % g] = len([i for i in range(1, 3001) if i % 7 and i % 3 == g])
        self.assertEqual(counts, expect)

    def test_parquet_physical_and_logical_types(self):
        prefix = "types/run/"
        self.run_sql("unload ('select sale_id, store_id, quantity, unit_price, total_amount, discount, tax_rate, "
                     "is_online, currency, sale_date, created_at, updated_at from sales') to 's3://staging/%s' "
                     "iam_role default format parquet parallel off manifest" % prefix)
        final = self.listing(prefix)
        self.check_manifest(prefix, final, 3000)
        _, cols = parquet_footer(self.get(prefix + "000.parquet"))
        got = {name: column_type(e) for name, e in cols.items()}
        # Redshift's forms, which DuckDB's own writer does not give: INT96 timestamps (TIMESTAMPTZ in UTC),
        # decimals as FIXED_LEN_BYTE_ARRAY of the fewest bytes, SMALLINT as INT32 annotated INT_16
        self.assertEqual(got, {
            "sale_id": "INT64",
            "store_id": "INT32 INT_16",
            "quantity": "INT32",
            "unit_price": "FIXED_LEN_BYTE_ARRAY len=6 DECIMAL (12,2)",
            "total_amount": "FIXED_LEN_BYTE_ARRAY len=16 DECIMAL (38,10)",
            "discount": "FLOAT",
            "tax_rate": "DOUBLE",
            "is_online": "BOOLEAN",
            "currency": "BYTE_ARRAY UTF8",
            "sale_date": "INT32 DATE",
            "created_at": "INT96",
            "updated_at": "INT96",
        })


if __name__ == "__main__":
    unittest.main()

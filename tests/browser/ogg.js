// A small valid Ogg Opus file (what jetchat's upload sniffing accepts and chromium plays):
// the OpusHead and OpusTags pages, then one second of 20 ms packets that carry no frame data
// (decoded as silence).

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function crc(bytes) {
  let c = 0;
  for (const b of bytes) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ b) & 0xff]) >>> 0;
  return c;
}

function page({ type, granule, sequence, packets }) {
  const segments = [];
  for (const p of packets) {
    let n = p.length;
    while (n >= 255) { segments.push(255); n -= 255; }
    segments.push(n);
  }
  const header = Buffer.alloc(27 + segments.length);
  header.write('OggS', 0, 'latin1');
  header[5] = type;
  header.writeBigUInt64LE(BigInt(granule), 6);
  header.writeUInt32LE(1, 14); // serial
  header.writeUInt32LE(sequence, 18);
  header[26] = segments.length;
  Buffer.from(segments).copy(header, 27);
  const out = Buffer.concat([header, ...packets]);
  out.writeUInt32LE(crc(out), 22);
  return out;
}

export function oggOpus(seconds = 1) {
  const preSkip = 312;
  const head = Buffer.from([...Buffer.from('OpusHead', 'latin1'), 1, 1, preSkip & 0xff, preSkip >> 8, 0x80, 0xbb, 0, 0, 0, 0, 0]);
  const vendor = Buffer.from('jetchat-test', 'latin1');
  const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
  tags.write('OpusTags', 0, 'latin1');
  tags.writeUInt32LE(vendor.length, 8);
  vendor.copy(tags, 12);
  const count = seconds * 50;
  const packets = Array.from({ length: count }, () => Buffer.from([0xf8])); // CELT FB 20 ms, mono, no data
  return Buffer.concat([
    page({ type: 2, granule: 0, sequence: 0, packets: [head] }),
    page({ type: 0, granule: 0, sequence: 1, packets: [tags] }),
    page({ type: 4, granule: preSkip + count * 960, sequence: 2, packets }),
  ]);
}

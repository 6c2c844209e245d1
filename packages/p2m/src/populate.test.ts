import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { type Gfn, gfn, type Mfn, mfn } from './frame.js';
import { mapMmio } from './mmio.js';
import { P2m } from './p2m.js';
import { addEntries, populateRam } from './populate.js';

describe('populateRam (seed 003)', () => {
  it('populates holes: contiguous mfns give one extent of 4K leaves', () => {
    const p2m = new P2m();
    expect(populateRam(p2m, gfn(0x100), 0x40, mfn(0x8000))).toEqual({ ok: true, orphaned: [] });
    expect([...p2m.extents()]).toEqual([{ gfn: 0x100, count: 0x40, mfn: 0x8000, type: 'ram_rw', order: 0 }]);
    expect(p2m.events).toEqual([]);
  });

  it('an array of mfns maps frame k to mfns[k]', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(10), 3, [mfn(7), mfn(3), mfn(4)], 'ram_ro');
    expect(p2m.lookup(gfn(10))).toEqual({ mfn: 7, type: 'ram_ro', order: 0 });
    expect(p2m.lookup(gfn(12))).toEqual({ mfn: 4, type: 'ram_ro', order: 0 });
  });

  it('default policy: populating over pages replaces them and names every dropped frame', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(0xfffc0), 0x10, mfn(0x1000)); // the device model pre-populated {0xfffc0-0xfffcf}
    populateRam(p2m, gfn(0xfffe0), 0x2, mfn(0x2000)); // and {0xfffe0-0xfffe1}
    const result = populateRam(p2m, gfn(0xfffc8), 0x38, mfn(0x9000)); // hvmloader: {0xfffc8-0xfffff}
    const dropped: Array<[number, number]> = [
      [0xfffc8, 0xfffcf],
      [0xfffe0, 0xfffe1],
    ];
    expect(result).toEqual({ ok: true, orphaned: dropped });
    expect(p2m.events).toEqual([{ kind: 'ram-orphaned', by: 'populate', gfns: dropped }]);
    expect(p2m.lookup(gfn(0xfffe0)).mfn).toBe(0x9018);
    expect(p2m.lookup(gfn(0xfffc7)).mfn).toBe(0x1007);
  });

  it('refuseClobber: EEXIST with the frames, nothing changed', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(5), 2, mfn(0x100));
    const before = [...p2m.extents()];
    expect(populateRam(p2m, gfn(0), 10, mfn(0x200), 'ram_rw', 'refuseClobber')).toEqual({
      ok: false,
      code: 'EEXIST',
      gfns: [[5, 6]],
    });
    expect([...p2m.extents()]).toEqual(before);
    expect(p2m.events).toEqual([]);
    expect(populateRam(p2m, gfn(7), 3, mfn(0x200), 'ram_rw', 'refuseClobber')).toEqual({
      ok: true,
      orphaned: [],
    });
  });

  it('repopulating a gfn with the page it already holds drops nothing', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(0), 4, mfn(0x40));
    expect(populateRam(p2m, gfn(0), 4, mfn(0x40))).toEqual({ ok: true, orphaned: [] });
  });

  it('populating over a special entry crashes the domain; the frames before it are done', () => {
    const p2m = new P2m();
    mapMmio(p2m, gfn(0x13), 1, mfn(0xa0000));
    expect(populateRam(p2m, gfn(0x10), 8, mfn(0x500))).toEqual({
      ok: false,
      code: 'EPERM',
      done: 3,
      gfn: 0x13,
    });
    expect(p2m.crashed).toBe(true);
    expect(p2m.lookup(gfn(0x12)).mfn).toBe(0x502);
    expect(p2m.lookup(gfn(0x13)).mfn).toBe(0xa0000);
    expect(p2m.lookup(gfn(0x14)).mfn).toBeUndefined();
  });

  it('ENOMEM from an entry write stops with the count done', () => {
    const p2m = new P2m({ failAt: (n) => n === 3 });
    expect(populateRam(p2m, gfn(0), 8, mfn(0))).toEqual({ ok: false, code: 'ENOMEM', done: 2, gfn: 2 });
  });

  it('a non-translated domain: EPERM', () => {
    expect(populateRam(new P2m({ translated: false }), gfn(0), 1, mfn(0))).toEqual({
      ok: false,
      code: 'EPERM',
      done: 0,
    });
  });

  // The casts stand for untyped JavaScript callers: the checks stay at run time.
  it.each([
    ['a frame beyond 52 bits', () => populateRam(new P2m(), (2 ** 52) as Gfn, 1, mfn(0)), 'gfn'],
    ['an mfn beyond 52 bits', () => populateRam(new P2m(), gfn(0), 2, [0, 2 ** 52] as Mfn[]), 'mfns[1]'],
    ['a run of mfns past 2^52', () => populateRam(new P2m(), gfn(0), 2, mfn(2 ** 52 - 1)), 'count'],
    ['too few mfns', () => populateRam(new P2m(), gfn(0), 2, [mfn(0)]), 'mfns'],
    ['a non-RAM type', () => populateRam(new P2m(), gfn(0), 1, mfn(0), 'mmio_direct'), 'type'],
    [
      'an unknown policy',
      () => populateRam(new P2m(), gfn(0), 1, mfn(0), 'ram_rw', 'x' as 'report'),
      'policy',
    ],
  ])('%s throws naming the argument', (_name, call, argument) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(argument);
  });
});

// p2m_add_page returns what p2m_set_entry returns: -EINVAL from ept_set_entry for a gfn the 4-level
// tables cannot hold, -ENOENT from p2m_pt_set_entry.
describe('populateRam beyond the address width (p2m_add_page)', () => {
  const LIMIT = 2 ** 36;
  it.each([
    ['ept', 'EINVAL'],
    ['pt', 'ENOENT'],
  ] as const)(
    '%s: the frames below the limit are populated, the first past it fails with %s',
    (tables, code) => {
      const p2m = new P2m({ addressBits: 48, tables });
      expect(populateRam(p2m, gfn(LIMIT - 4), 8, mfn(0x500))).toEqual({
        ok: false,
        code,
        done: 4,
        gfn: LIMIT,
      });
      expect([...p2m.extents()]).toEqual([
        { gfn: LIMIT - 4, count: 4, mfn: 0x500, type: 'ram_rw', order: 0 },
      ]);
    },
  );
});

describe('addEntries (p2m_add_page, set_typed_p2m_entry)', () => {
  it('writes any mapping type over holes and RAM as one run', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(0x100), 0x10, mfn(0x8000));
    expect(addEntries(p2m, gfn(0x108), 0x100000, mfn(0x20000), 'grant_map_rw')).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x108))).toEqual({ mfn: 0x20000, type: 'grant_map_rw', order: 0 });
    expect(p2m.lookup(gfn(0x108 + 0xfffff))).toEqual({
      mfn: 0x20000 + 0xfffff,
      type: 'grant_map_rw',
      order: 0,
    });
    expect(p2m.lookup(gfn(0x107))).toEqual({ mfn: 0x8007, type: 'ram_rw', order: 0 });
    expect(p2m.crashed).toBe(false);
  });

  it.each(['ram_rw', 'map_foreign', 'mmio_direct'] as const)(
    'a %s entry over MMIO is refused: "not permitted", EPERM, the domain crashed, the frames before it written',
    (type) => {
      // p2m_add_page: `if ( p2m_is_special(ot) )` … domain_crash, -EPERM ("Don't permit unmapping
      // grant/foreign/direct-MMIO this way"); set_typed_p2m_entry: the same for another mfn or type.
      const p2m = new P2m();
      mapMmio(p2m, gfn(0x204), 1, mfn(0xfe000));
      expect(addEntries(p2m, gfn(0x200), 8, mfn(0x9000), type)).toEqual({
        ok: false,
        code: 'EPERM',
        done: 4,
        gfn: 0x204,
      });
      expect(p2m.crashed).toBe(true);
      expect(p2m.lookup(gfn(0x203))).toEqual({ mfn: 0x9003, type, order: 0 });
      expect(p2m.lookup(gfn(0x204))).toEqual({ mfn: 0xfe000, type: 'mmio_direct', order: 0 });
      expect(p2m.lookup(gfn(0x205)).mfn).toBeUndefined();
    },
  );

  it('the same MMIO mapping again is left as it is (set_typed_p2m_entry: "Special-case (almost) identical mappings")', () => {
    const p2m = new P2m();
    mapMmio(p2m, gfn(0x200), 4, mfn(0xfe000));
    expect(addEntries(p2m, gfn(0x1fe), 8, mfn(0xfdffe), 'mmio_direct')).toEqual({ ok: true });
    expect(p2m.crashed).toBe(false);
    expect([...p2m.extents()]).toEqual([
      { gfn: 0x1fe, count: 8, mfn: 0xfdffe, type: 'mmio_direct', order: 0 },
    ]);
  });

  it('an armed fault stops the call with ENOMEM at that write', () => {
    const p2m = new P2m();
    p2m.failNext(3);
    expect(addEntries(p2m, gfn(0x10), 5, mfn(0x10), 'ram_rw')).toEqual({
      ok: false,
      code: 'ENOMEM',
      done: 2,
      gfn: 0x12,
    });
  });

  it('refuses a count that runs past 2^52 or is not positive', () => {
    const p2m = new P2m();
    expect(() => addEntries(p2m, gfn(0xfffffffffffff), 2, mfn(0), 'ram_rw')).toThrow(InvalidArgumentError);
    expect(() => addEntries(p2m, gfn(0), 0, mfn(0), 'ram_rw')).toThrow(InvalidArgumentError);
    expect(() => addEntries(p2m, gfn(0), 1, mfn(0), 'invalid')).toThrow(InvalidArgumentError);
  });
});

/**
 * The MTRRs a new HVM vCPU starts with (Xen's `hvm_vcpu_cacheattr_init`, xen/arch/x86/hvm/mtrr.c):
 * a domU's are all zero (disabled, default UC, `MTRR_VCNT` pairs); the hardware domain's are a copy
 * of the host's.
 */
import { InvalidArgumentError } from './errors.js';
import { MtrrState } from './mtrr.js';

/**
 * The MTRRs of a new vCPU of the hardware domain, as `hvm_vcpu_cacheattr_init` copies them from the
 * host's `mtrr_state`: MTRRcap.VCNT is the host's (Xen caps it at `MTRR_VCNT_MAX`, 40, the most an
 * `MtrrState` holds), each variable pair
 * goes through `mtrr_var_range_msr_set` and the fixed ranges through `mtrr_fix_range_msr_set`
 * (both accept what the host holds: its types are valid and its ranges fit its width), and
 * MTRRdefType is set last from the host's type, FE and E bits (`mtrr_def_type_msr_set`). So every
 * field is the host's: enabled, fixed enabled, default type, the 88 fixed types, the variable pairs
 * and their count. Xen copies the fixed ranges only when the host has them (`have_fixed`, MTRRcap.FIX);
 * a host here always does (every x86-64 CPU).
 */
export function hardwareDomainMtrr(host: MtrrState): MtrrState {
  if (!(host instanceof MtrrState)) throw new InvalidArgumentError('host', host, 'an MtrrState');
  return new MtrrState({
    enabled: host.enabled,
    fixedEnabled: host.fixedEnabled,
    defaultType: host.defaultType,
    fixedRanges: host.fixedRanges,
    // Xen caps the count at MTRR_VCNT_MAX (40); an MtrrState never holds more.
    variableRanges: host.variableRanges,
    variableCount: host.variableCount,
    physAddrBits: host.physAddrBits,
  });
}

#!/usr/bin/env bash
# capture-qemu-traces.sh — capture real QEMU guest traces of PCI config-space
# activity (BAR sizing/placement, bridge programming, MSI-X enabling) as test
# fixtures for the vPCI BAR-mapping model.
#
# WHAT IT NEEDS
#   Debian 12 (bookworm) on x86-64, run as root (or with passwordless apt),
#   access to Debian's apt mirrors. No KVM needed: QEMU runs with TCG.
#   It installs, if missing: qemu-system-x86 seabios ovmf ipxe-qemu socat
#   busybox-static cpio kmod (apt-get, --no-install-recommends; qboot is not a
#   Debian package, but QEMU's own /usr/share/qemu/qboot.rom from
#   qemu-system-data is), and fetches the current
#   Debian kernel package (the one linux-image-amd64 depends on, overridable
#   with KPKG=linux-image-6.1.0-NN-amd64) with `apt-get download`.
#
# WHAT IT WRITES
#   Scratch (not in the repo), under ${WORK:-/tmp/vpci-qemu}: the kernel .deb
#   and its extraction, the busybox initramfs, the NVMe raw image, the OVMF
#   VARS copy, QEMU monitor sockets, FIFOs and raw serial/debugcon captures.
#   Fixtures, under test/fixtures/qemu/ (relative to the repo root), for each
#   scenario NAME (see SCENARIOS below):
#     NAME.trace.log     QEMU "log"-backend trace, filtered to pci_cfg_*,
#                        pci_update_mappings_*, msix_* and the
#                        memory_region_ops_{read,write} lines of the regions
#                        pci-conf-idx, pci-conf-data and pcie-mmcfg-mmio,
#                        and the writes to acpi-pci-hotplug (ACPI ejects);
#                        original line order and text, nothing rewritten. A
#                        "cfg" scenario is traced with -trace 'pci_cfg_*'
#                        alone, so its log has nothing else.
#                        Stored as NAME.trace.log.gz (gzip -n -9) instead when
#                        over TRACE_GZIP_OVER bytes (default 1000000): a Linux
#                        trace is ~6 MB, most of it Linux probing the absent
#                        buses 02-ff through 0xcf8/0xcfc.
#     NAME.info-pci.txt  the HMP monitor's `info pci` at the end of the run
#                        (the firmware package reads these)
#     NAME.monitor.txt   `info pci` then `info mtree`, each after its
#                        "(qemu) COMMAND" line, as a session transcript (what
#                        `vpci-replay --qemu-monitor` takes)
#     NAME.serial.txt    the guest serial console: first 200 KB, CRs removed
#     NAME.debugcon.txt  the firmware's debug port 0x402 (SeaBIOS's own log of
#                        how it sized and placed every BAR); omitted if empty
#     NAME.cmdline.txt   the exact QEMU command line (shell-quoted)
#     NAME.steps.txt     a hot-plug scenario's monitor steps (STEPS below), each
#                        "(qemu) COMMAND" followed by `info pci` and `info mtree`
#                        as they were after it; omitted for a boot
#   Re-running overwrites these files; nothing else in the repo is touched.
#
# HOW LONG IT TAKES
#   About 5-10 minutes on 2 shared cores once packages and kernel are present
#   (TCG: SeaBIOS alone ~10 s, each Linux boot ~30-90 s to the marker plus
#   ~10 s for the monitor), plus the first run's install and ~70 MB kernel
#   download. Every step has a timeout (a hung guest costs BOOT_TIMEOUT s).
#
# USAGE
#   bash scripts/capture-qemu-traces.sh [SCENARIO...]   (default: all of SCENARIOS;
#   a NAMED_ONLY_SCENARIOS one runs only when named)
#   Environment: WORK=/tmp/vpci-qemu  KPKG=<kernel package>  BOOT_TIMEOUT=420
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$REPO/test/fixtures/qemu"
WORK=${WORK:-/tmp/vpci-qemu}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-420}   # seconds to wait for the guest marker
SEABIOS_WAIT=${SEABIOS_WAIT:-60}    # seconds to wait for "No bootable device"
MARKER=VPCI-TRACE-DONE
SERIAL_MAX=204800
TRACE_GZIP_OVER=${TRACE_GZIP_OVER:-1000000}

log() { printf '[capture %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- packages --
ensure_packages() {
  local pkgs=(qemu-system-x86 seabios ovmf ipxe-qemu socat busybox-static cpio kmod)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    timeout 600 apt-get update -q
    DEBIAN_FRONTEND=noninteractive timeout 900 \
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# ------------------------------------------------------------------ kernel --
ensure_kernel() {
  mkdir -p "$WORK/dl"
  if [[ -z ${KPKG:-} ]]; then
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [[ -z $KPKG ]]; then
      timeout 600 apt-get update -q
      KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
  fi
  [[ -n $KPKG ]] || die "cannot determine the kernel package"
  local deb
  deb=$(ls "$WORK/dl/${KPKG}_"*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $deb ]]; then
    log "downloading $KPKG"
    (cd "$WORK/dl" && timeout 900 apt-get download -q "$KPKG")
    deb=$(ls "$WORK/dl/${KPKG}_"*.deb | head -n1)
  fi
  KDEB=$deb
  if [[ ! -f $WORK/kpkg/.done-$(basename "$deb") ]]; then
    log "extracting $(basename "$deb")"
    rm -rf "$WORK/kpkg"
    dpkg-deb -x "$deb" "$WORK/kpkg"
    touch "$WORK/kpkg/.done-$(basename "$deb")"
  fi
  KVER=$(ls "$WORK/kpkg/lib/modules" | head -n1)
  VMLINUZ="$WORK/kpkg/boot/vmlinuz-$KVER"
  [[ -f $VMLINUZ ]] || die "no vmlinuz in $deb"
  # The package ships no modules.dep (its postinst runs depmod): make one.
  [[ -f $WORK/kpkg/lib/modules/$KVER/modules.dep ]] || depmod -b "$WORK/kpkg" "$KVER"
}

# --------------------------------------------------------------- initramfs --
build_initramfs() {
  local root="$WORK/initramfs" cfg="$WORK/kpkg/boot/config-$KVER"
  INITRD="$WORK/initrd.img"
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  # Modules for the drivers that enable MSI-X, with their dependencies in
  # load order. Built-in drivers (=y) need nothing.
  local want=() m
  grep -q '^CONFIG_BLK_DEV_NVME=m' "$cfg" && want+=(nvme)
  grep -q '^CONFIG_VIRTIO_PCI=m' "$cfg" && want+=(virtio_pci)
  grep -q '^CONFIG_VIRTIO_NET=m' "$cfg" && want+=(virtio_net)
  grep -q '^CONFIG_E1000E=m' "$cfg" && want+=(e1000e)
  grep -q '^CONFIG_E1000=m' "$cfg" && want+=(e1000)
  : >"$root/modules.order"
  for m in "${want[@]}"; do
    modprobe -d "$WORK/kpkg" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$root/lib/modules/"
    basename "$ko" >>"$root/modules.order"
  done
  cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "VPCI-INIT: start, loading modules"
for m in $(cat /modules.order); do
  if insmod "/lib/modules/$m" 2>/tmp/err; then echo "VPCI-INIT: insmod $m ok"
  else echo "VPCI-INIT: insmod $m failed: $(cat /tmp/err)"; fi
done
sleep 2
# vpci_numvfs=N on the kernel command line: enable N VFs on every SR-IOV device
for a in $(cat /proc/cmdline); do
  case $a in vpci_numvfs=*)
    for t in /sys/bus/pci/devices/*/sriov_totalvfs; do
      d=$(dirname "$t")
      if echo "${a#*=}" >"$d/sriov_numvfs" 2>/tmp/err; then echo "VPCI-INIT: $(basename "$d") sriov_numvfs=${a#*=} ok"
      else echo "VPCI-INIT: $(basename "$d") sriov_numvfs=${a#*=} failed: $(cat /tmp/err)"; fi
    done; sleep 2 ;;
  esac
done
dump() {
  for d in /sys/bus/pci/devices/*; do
    echo "VPCI-INIT: $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") driver=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null) msi_irqs=$(ls "$d/msi_irqs" 2>/dev/null | tr '\n' ' ')"
    cat "$d/resource" | awk -v d="$(basename "$d")" '$1 != "0x0000000000000000" {print "VPCI-INIT:   " d " res" NR-1 " " $0}'
  done
}
dump
echo "VPCI-INIT: --- /proc/iomem ---"; cat /proc/iomem
echo "VPCI-INIT: --- /proc/interrupts ---"; cat /proc/interrupts
echo "VPCI-TRACE-DONE"
# Hot plug (monitor steps after the marker): list the devices again whenever the set changes.
seen=$(ls /sys/bus/pci/devices)
while true; do
  sleep 2
  now=$(ls /sys/bus/pci/devices)
  if [ "$now" != "$seen" ]; then seen=$now; sleep 2; echo "VPCI-INIT: --- devices changed ---"; dump; fi
done
EOF
  chmod +x "$root/init"
  (cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -9 >"$INITRD"
  log "initramfs: $(wc -l <"$root/modules.order") modules, $(stat -c %s "$INITRD") bytes"
}

# ------------------------------------------------------------------ qemu ----
TRACE_EVENTS="$WORK/trace-events"
write_trace_events() {
  printf '%s\n' 'pci_cfg_*' 'pci_update_mappings_add' 'pci_update_mappings_del' \
    'msix_*' 'memory_region_ops_read' 'memory_region_ops_write' >"$TRACE_EVENTS"
}
# keep: every non-memory_region_ops event enabled above, the memory_region_ops lines of the three
# config-space regions, and the writes to QEMU's ACPI PCI hot-plug registers (the guest's eject)
FILTER_RE="^(pci_cfg_|pci_update_mappings_|msix_)|^memory_region_ops_(read|write) .* name '(pci-conf-idx|pci-conf-data|pcie-mmcfg-mmio)'\$|^memory_region_ops_write .* name 'acpi-pci-hotplug'\$"

# The mailing-list seed: a PCIe-to-PCI bridge with four pci-testdevs behind it.
TESTDEVS=(
  -device pcie-pci-bridge,id=pcie.1
  -device pci-testdev,bus=pcie.1,membar=32
  -device pci-testdev,bus=pcie.1,membar=32
  -device pci-testdev,bus=pcie.1,membar=32
  -device pci-testdev,bus=pcie.1,membar=268435456
)
# NVMe (MSI-X), virtio-net (MSI-X; user net restricted: no traffic leaves
# QEMU, no option ROM so SeaBIOS/OVMF do not try PXE), and a pci-testdev
# whose 4 GiB 64-bit prefetchable BAR can only be placed above 4 GiB.
LINUXDEVS=(
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0
  -netdev user,id=n0,restrict=on
  -device virtio-net-pci,netdev=n0,romfile=
  -device pci-testdev,membar=4294967296
)
# i440fx (no ECAM): a PCI bridge on the root bus with virtio-net behind it and
# a second bridge behind the first, holding a pci-testdev (two levels of bus
# numbers for firmware and Linux to assign), and NVMe on the root bus.
PCDEVS=(
  -device pci-bridge,id=br1,chassis_nr=1,addr=5
  -netdev user,id=n0,restrict=on
  -device virtio-net-pci,netdev=n0,romfile=,bus=br1,addr=1
  -device pci-bridge,id=br2,chassis_nr=2,bus=br1,addr=2
  -device pci-testdev,bus=br2,addr=3,membar=1048576
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0,addr=6
)
# qboot leaves BAR placement to Linux: a PCIe root port with e1000e behind it,
# virtio-net and NVMe on the root bus.
QBOOTDEVS=(
  -device pcie-root-port,id=rp1,chassis=1,addr=5
  -netdev user,id=n0,restrict=on
  -device e1000e,netdev=n0,romfile=,bus=rp1
  -netdev user,id=n1,restrict=on
  -device virtio-net-pci,netdev=n1,romfile=,addr=6
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0,addr=7
)
# Two PCIe root ports with a device behind each: SeaBIOS numbers their buses 1 and 2; Linux, told
# to assign bus numbers itself and keep 4 for each hot-plug port, renumbers the second to 5.
RENUMBERDEVS=(
  -device pcie-root-port,id=rp1,chassis=1,addr=5
  -device pcie-root-port,id=rp2,chassis=2,addr=6
  -netdev user,id=n0,restrict=on
  -device virtio-net-pci,netdev=n0,romfile=,bus=rp1
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0,bus=rp2
)
# Three MSI-X devices with their Linux drivers: NVMe, virtio-net and e1000e
# (which keeps its iPXE option ROM: SeaBIOS maps and unmaps the ROM BAR).
MSIXDEVS=(
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0,addr=4
  -netdev user,id=n0,restrict=on
  -device virtio-net-pci,netdev=n0,romfile=,addr=5
  -netdev user,id=n1,restrict=on
  -device e1000e,netdev=n1,addr=6
)

# Hot plug (q35): two empty PCIe root ports for Linux's pciehp (QEMU 7.2's q35 hot-plugs through
# ACPI by default; turned off so the ports' native hot plug is used). The backends of the devices
# the monitor steps add are made at start.
HOTPLUGDEVS=(
  -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off
  -device pcie-root-port,id=rp1,chassis=1,addr=5
  -device pcie-root-port,id=rp2,chassis=2,addr=6
  -netdev user,id=n0,restrict=on
  -netdev user,id=n1,restrict=on
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
)
# i440fx ACPI hot plug on the root bus (Linux's acpiphp), next to an NVMe present from the start.
PCHOTPLUGDEVS=(
  -drive "file=$WORK/nvme0.img,if=none,id=nv0,format=raw"
  -device nvme,drive=nv0,serial=vpci0,addr=4
  -netdev user,id=n0,restrict=on
  -netdev user,id=n1,restrict=on
)
# SR-IOV: an NVMe PF (QEMU 7.2: needs an nvme-subsys and flexible queue/interrupt resources for
# its VFs) behind a PCIe root port; the init enables the VFs (vpci_numvfs= kernel argument).
SRIOVDEVS=(
  -device pcie-root-port,id=rp1,chassis=1,addr=5
  -device nvme-subsys,id=ss0
  -device nvme,serial=vpcisr,subsys=ss0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,bus=rp1
)

# STEPS: monitor commands run one by one after the guest's marker, each followed by STEP_WAIT
# seconds for the guest to handle it (pciehp: ~1 s to bring a slot up, 5 s after the attention
# button before a slot goes down), by scenario. Each command, and `info pci` and `info mtree` after
# it, are kept in NAME.steps.txt. The last device_add of each puts a device of other BAR sizes into
# the slot the first (virtio-net) left.
declare -A STEPS=(
  [hotplug-linux]='device_add virtio-net-pci,netdev=n0,romfile=,bus=rp1,id=hp1
device_add nvme,drive=nv0,serial=vpci1,bus=rp2,id=hp2
device_del hp1
device_add e1000e,netdev=n1,romfile=,bus=rp1,id=hp3'
  [pc-hotplug-linux]='device_add virtio-net-pci,netdev=n0,romfile=,addr=5,id=hp1
device_del hp1
device_add e1000,netdev=n1,romfile=,addr=5,id=hp2'
)
STEP_WAIT=${STEP_WAIT:-30}

# SCENARIOS: name machine firmware kernel devices trace [kernel arguments]
#   machine: q35 | pc (i440fx); firmware: seabios | ovmf | qboot; kernel: yes
#   (Linux boots to the init's marker) | no (SeaBIOS to "No bootable device");
#   devices: the name of one of the arrays above, or two joined with "+";
#   trace: full (the events file) | cfg (-trace 'pci_cfg_*' alone);
#   kernel arguments: added to "console=ttyS0 panic=-1"
SCENARIOS=(
  'seabios-testdev q35 seabios no TESTDEVS full'
  'seabios-linux q35 seabios yes TESTDEVS+LINUXDEVS full'
  'ovmf-linux q35 ovmf yes TESTDEVS+LINUXDEVS full'
  'pc-linux pc seabios yes PCDEVS full'
  'qboot-linux q35 qboot yes QBOOTDEVS full'
  'msix-linux q35 seabios yes MSIXDEVS full'
  'cfgonly-linux pc seabios yes MSIXDEVS cfg'
  'renumber-linux q35 seabios yes RENUMBERDEVS full pci=assign-busses,hpbussize=4'
  'hotplug-linux q35 seabios yes HOTPLUGDEVS full'
  'pc-hotplug-linux pc seabios yes PCHOTPLUGDEVS full'
)
# Run only when named: their logs are not fixtures (test/qemu.test.ts replays every fixture).
# sriov-linux: vpci-replay --qemu does not replay SR-IOV yet (docs/qemu-logs.md, Limits).
NAMED_ONLY_SCENARIOS=(
  'sriov-linux q35 seabios yes SRIOVDEVS full vpci_numvfs=2'
)

qarg() { # shell-quote one argument only where needed (readable cmdline files)
  if [[ $1 =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

hmp() { # hmp SOCK CMD: run one HMP command, print its output (cleaned)
  local sock=$1 cmd=$2
  { sleep 1; printf '%s\n' "$cmd"; sleep 4; } |
    timeout 20 socat - "UNIX-CONNECT:$sock" 2>/dev/null |
    tr -d '\r' | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' |
    grep -v -e '^QEMU [0-9].*monitor - type' -e '^(qemu) *$' |
    sed -e "s/^(qemu) $cmd\$//" -e '/^(qemu) /d' | awk 'NF || started {started=1; print}'
}

scenario() { # scenario NAME: the SCENARIOS line of NAME
  local line
  for line in "${SCENARIOS[@]}" "${NAMED_ONLY_SCENARIOS[@]}"; do
    [[ ${line%% *} == "$1" ]] && { echo "$line"; return; }
  done
  die "unknown scenario $1 (known: $(printf '%s ' "${SCENARIOS[@]%% *}" "${NAMED_ONLY_SCENARIOS[@]%% *}"))"
}

run_scenario() {
  local name machine fw kernel devsets trace kargs
  read -r name machine fw kernel devsets trace kargs <<<"$(scenario "$1")"
  local d="$WORK/run-$name"
  rm -rf "$d"; mkdir -p "$d"
  local sock="$d/monitor.sock" fifo="$d/trace.fifo" serial="$d/serial.raw" dbg="$d/debugcon.raw"
  local cmd=(qemu-system-x86_64 -M "$machine,graphics=off" -accel tcg -cpu qemu64 -smp 1 -m 2G
    -nodefaults -display none
    -serial "file:$serial"
    -chardev "file,id=dbg,path=$dbg" -device isa-debugcon,iobase=0x402,chardev=dbg
    -monitor "unix:$sock,server,nowait")
  if [[ $trace == cfg ]]; then cmd+=(-trace 'pci_cfg_*' -D "$fifo")
  else cmd+=(-trace "events=$TRACE_EVENTS" -D "$fifo"); fi
  case $fw in
    ovmf)
      local code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
      [[ -f $code ]] || { code=/usr/share/OVMF/OVMF_CODE.fd; vars=/usr/share/OVMF/OVMF_VARS.fd; }
      cp "$vars" "$WORK/ovmf-vars.fd"
      cmd+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
        -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd") ;;
    qboot) cmd+=(-bios /usr/share/qemu/qboot.rom) ;;
    seabios) ;;
    *) die "$name: unknown firmware $fw" ;;
  esac
  local set ref
  for set in ${devsets//+/ }; do ref="$set[@]"; cmd+=("${!ref}"); done
  rm -f "$WORK/nvme0.img"; truncate -s 64M "$WORK/nvme0.img"
  if [[ $kernel == yes ]]; then
    cmd+=(-kernel "$VMLINUZ" -initrd "$INITRD" -append "console=ttyS0 panic=-1${kargs:+ $kargs}")
  fi

  mkfifo "$fifo"
  # The log backend writes to the FIFO; grep keeps only the wanted lines, so
  # the unfiltered trace (hundreds of MB) never touches the disk.
  grep -E --line-buffered "$FILTER_RE" <"$fifo" >"$d/trace.log" &
  local grep_pid=$!
  { local first=1 a
    for a in "${cmd[@]}"; do ((first)) || printf ' '; first=0; qarg "$a"; done
    echo; } >"$d/cmdline.txt"
  log "$name: starting QEMU"
  local t0=$SECONDS
  local nsteps=0
  [[ -z ${STEPS[$name]:-} ]] || nsteps=$(wc -l <<<"${STEPS[$name]}")
  timeout $((BOOT_TIMEOUT + 120 + nsteps * (STEP_WAIT + 15))) "${cmd[@]}" >"$d/qemu.out" 2>&1 &
  local qemu_pid=$!

  # wait for the monitor socket
  local i
  for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.2; done
  local want limit status=timeout
  if [[ $kernel == yes ]]; then want=$MARKER; limit=$BOOT_TIMEOUT
  else want='No bootable device'; limit=$SEABIOS_WAIT; fi
  while ((SECONDS - t0 < limit)); do
    if [[ -f $serial ]] && grep -q -a -- "$want" "$serial"; then status=found; break; fi
    kill -0 "$qemu_pid" 2>/dev/null || { status=qemu-exited; break; }
    sleep 2
  done
  log "$name: wait for '$want': $status after $((SECONDS - t0)) s"
  if kill -0 "$qemu_pid" 2>/dev/null; then
    [[ $kernel == yes ]] || sleep 2   # let SeaBIOS settle after the message
    if [[ $status == found && -n ${STEPS[$name]:-} ]]; then
      local step
      while read -r step; do
        log "$name: $step"
        { echo "(qemu) $step"; hmp "$sock" "$step"; sleep "$STEP_WAIT"
          echo '(qemu) info pci'; hmp "$sock" 'info pci'
          echo '(qemu) info mtree'; hmp "$sock" 'info mtree'; } >>"$d/steps.txt" || true
      done <<<"${STEPS[$name]}"
    fi
    hmp "$sock" 'info pci' >"$d/info-pci.txt" || true
    hmp "$sock" 'info mtree' >"$d/info-mtree.txt" || true
    hmp "$sock" 'quit' >/dev/null || true
  fi
  for ((i = 0; i < 50; i++)); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$qemu_pid" 2>/dev/null; then log "$name: QEMU did not quit; killing $qemu_pid"; kill "$qemu_pid" || true; fi
  wait "$qemu_pid" || true
  # if QEMU died before opening the FIFO, grep is still blocked opening it
  if kill -0 "$grep_pid" 2>/dev/null; then timeout 5 bash -c ': >"$1"' _ "$fifo" || true; fi
  wait "$grep_pid" || true
  if [[ -s $d/qemu.out ]]; then sed 's/^/  qemu: /' "$d/qemu.out" >&2; fi

  # install the fixtures
  # Traces over TRACE_GZIP_OVER bytes are stored gzipped (gzip -n: no name or
  # time stamp in the header, so identical input gives identical bytes).
  rm -f "$OUT/$name.trace.log" "$OUT/$name.trace.log.gz"
  local tfile="$OUT/$name.trace.log"
  if (($(stat -c %s "$d/trace.log") > TRACE_GZIP_OVER)); then
    tfile="$OUT/$name.trace.log.gz"; gzip -n -9 -c "$d/trace.log" >"$tfile"
  else cp "$d/trace.log" "$tfile"; fi
  cp "$d/info-pci.txt" "$OUT/$name.info-pci.txt" 2>/dev/null || : >"$OUT/$name.info-pci.txt"
  { echo '(qemu) info pci'; cat "$d/info-pci.txt" 2>/dev/null
    echo '(qemu) info mtree'; cat "$d/info-mtree.txt" 2>/dev/null; } >"$OUT/$name.monitor.txt"
  # (head reads the file itself: no SIGPIPE to trip pipefail on a long log)
  head -c "$SERIAL_MAX" "$serial" | tr -d '\r' >"$OUT/$name.serial.txt"
  if [[ -s $dbg ]]; then head -c "$SERIAL_MAX" "$dbg" | tr -d '\r' >"$OUT/$name.debugcon.txt"
  else rm -f "$OUT/$name.debugcon.txt"; fi
  cp "$d/cmdline.txt" "$OUT/$name.cmdline.txt"
  if [[ -s $d/steps.txt ]]; then cp "$d/steps.txt" "$OUT/$name.steps.txt"
  else rm -f "$OUT/$name.steps.txt"; fi
  log "$name: $(wc -l <"$d/trace.log") trace lines, $(stat -c %s "$d/trace.log") bytes -> $(basename "$tfile") $(stat -c %s "$tfile") bytes; status=$status"
  [[ $status == found ]] || log "$name: WARNING: marker not seen; fixtures hold what was captured"
}

# -------------------------------------------------------------------- main --
main() {
  local scenarios=("$@")
  ((${#scenarios[@]})) || scenarios=("${SCENARIOS[@]%% *}")
  local t_start=$SECONDS
  mkdir -p "$WORK" "$OUT"
  ensure_packages
  write_trace_events
  local need_kernel=no s
  for s in "${scenarios[@]}"; do [[ $(scenario "$s" | cut -d' ' -f4) == yes ]] && need_kernel=yes; done
  if [[ $need_kernel == yes ]]; then ensure_kernel; build_initramfs; fi
  log "versions: $(dpkg-query -W -f='${Package}=${Version} ' qemu-system-x86 qemu-system-data seabios ovmf ipxe-qemu busybox-static) ${KPKG:+$KPKG=$(dpkg-deb -f "$KDEB" Version)}"
  for s in "${scenarios[@]}"; do run_scenario "$s"; done
  log "done in $((SECONDS - t_start)) s; fixtures in $OUT"
}

main "$@"

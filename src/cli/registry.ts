/**
 * Every command of the CLI: its line in `tend --help` and how to load its module. main.ts loads
 * only the module of the command being run. A unit test (test/unit/cli-registry.test.ts) checks
 * that each line matches what the module itself declares, so the two cannot drift apart.
 */
import type { CliCommand } from './command.js';

export type Loader = () => Promise<{ command: CliCommand }>;

/** Every command: its line in `tend --help` (term and description) and how to load it. */
export const REGISTRY: readonly { term: string; description: string; load: Loader }[] = [
  {
    term: 'validate',
    description: 'check the project files and exit (0: valid, 3: errors, each with file:line:col)',
    load: () => import('./commands/validate.js'),
  },
  {
    term: 'init [options]',
    description: 'write a starter project file here (tend.yaml, or --format kdl|vms) for an image; never overwrites',
    load: () => import('./commands/init.js'),
  },
  { term: 'plan [options]', description: 'show what converge would do, without doing it', load: () => import('./commands/plan.js') },
  {
    term: 'converge|up [options]',
    description: 'make every declared VM real (create, start, restart, provision), then exit',
    load: () => import('./commands/converge.js'),
  },
  {
    term: 'reload [options]',
    description: "re-read the project files and apply only what changed (vmctl's name for `tend up`)",
    load: () => import('./commands/reload.js'),
  },
  {
    term: 'watch [options]',
    description: 'converge, then keep converging on every save, VM crash and resync (Ctrl-C stops watching; VMs keep running)',
    load: () => import('./commands/watch.js'),
  },
  {
    term: 'install [options]',
    description: 'write a systemd unit that runs `tend watch` for this project (survives reboots)',
    load: () => import('./commands/install.js'),
  },
  { term: 'uninstall [options]', description: 'remove the systemd unit of `tend install`', load: () => import('./commands/uninstall.js') },
  {
    term: 'down [options] [names...]',
    description: 'stop every VM of the project, dependents first (`tend up` starts them again)',
    load: () => import('./commands/down.js'),
  },
  {
    term: 'start [options] [names...]',
    description: 'clear a `tend stop` and converge these VMs',
    load: () => import('./commands/start.js'),
  },
  {
    term: 'stop [options] [names...]',
    description: 'stop VMs and keep them stopped (also under `tend watch`) until `tend start` or `tend up`',
    load: () => import('./commands/stop.js'),
  },
  {
    term: 'restart [options] [names...]',
    description: 'stop VMs, then converge them (start, provision)',
    load: () => import('./commands/restart.js'),
  },
  {
    term: 'suspend [options] [name]',
    description: 'pause the VM (its CPUs stop; memory stays)',
    load: () => import('./commands/suspend.js'),
  },
  { term: 'resume [options] [name]', description: 'continue a suspended VM', load: () => import('./commands/resume.js') },
  {
    term: 'destroy [options] [name]',
    description: 'stop the VM and delete its disk, seed and keys (named volumes are kept)',
    load: () => import('./commands/destroy.js'),
  },
  {
    term: 'ps|list [options] [name]',
    description: "list this project's VMs (every state): readiness, accelerator, ports, SSH, age, conditions; -a: every project",
    load: () => import('./commands/ps.js'),
  },
  {
    term: 'ls [options] [name]',
    description: 'every VM tend manages on this host, in every project: host, project, state, ready, ports, age, path',
    load: () => import('./commands/ls.js'),
  },
  {
    term: 'top|stats [options] [name]',
    description: 'CPU, memory, disk and network of the running VMs, refreshed on a terminal (--json: once)',
    load: () => import('./commands/top.js'),
  },
  {
    term: 'status [options] [name]',
    description: 'everything known about one VM: spec, process, ports, plan, conditions, state paths',
    load: () => import('./commands/status.js'),
  },
  {
    term: 'events [options]',
    description: 'what happened in this project (VmStarted, VmFailed, ...), oldest first',
    load: () => import('./commands/events.js'),
  },
  {
    term: 'ssh-config [options] [names...]',
    description: 'print an OpenSSH config block per VM (ssh, scp, rsync, VS Code reach it by alias); --append FILE keeps an include file',
    load: () => import('./commands/ssh-config.js'),
  },
  {
    term: 'cp [options] <src> <dest>',
    description: 'copy files and folders between the host and a VM, or two VMs, over SFTP: tend cp SRC NAME:DEST, tend cp NAME:SRC DEST',
    load: () => import('./commands/cp.js'),
  },
  {
    term: 'exec [options] <name> [command...]',
    description: "run a command in the VM over SSH; its exit code becomes tend's (125: tend failed)",
    load: () => import('./commands/exec.js'),
  },
  {
    term: 'ssh [options] [name] [command...]',
    description: 'open a terminal in the VM through the system ssh (user and key: docs/ssh.md)',
    load: () => import('./commands/ssh.js'),
  },
  {
    term: 'console [options] [name]',
    description: "attach to the VM's serial console (works during boot); Ctrl-] detaches",
    load: () => import('./commands/console.js'),
  },
  {
    term: 'logs|log [options] [name]',
    description: "a VM's log: its events (default), its serial console, or its provisioning output",
    load: () => import('./commands/logs.js'),
  },
  {
    term: 'provision [options]',
    description: 'run every provision step again on the running VMs (ignores the step cache)',
    load: () => import('./commands/provision.js'),
  },
  {
    term: 'doctor',
    description: 'check the host: QEMU, qemu-img, which accelerator really works, state dir',
    load: () => import('./commands/doctor.js'),
  },
  {
    term: 'image',
    description: 'manage base images (pull, list, inspect, verify, rm, build) and warm templates (templates, prune)',
    load: () => import('./commands/image.js'),
  },
  {
    term: 'pull <image>',
    description: 'download and verify a base image into the store (same as `tend image pull`)',
    load: () => import('./commands/pull.js'),
  },
  {
    term: 'images [options]',
    description: 'the built-in images: names, OS, login user, firmware, how each download is verified, stored or not',
    load: () => import('./commands/images.js'),
  },
  {
    term: 'verify [options] [image]',
    description: 'check stored images against their checksums (one, or --all)',
    load: () => import('./commands/verify.js'),
  },
  {
    term: 'devices [options]',
    description: "the host's PCI devices (address, kind, driver, IOMMU group) for passthrough",
    load: () => import('./commands/devices.js'),
  },
  { term: 'version', description: "tend's version, and the Node and QEMU it runs with", load: () => import('./commands/version.js') },
  {
    term: 'snapshot',
    description: 'named snapshots of a VM (disks, and memory while it runs): save, restore, ls, rm',
    load: () => import('./commands/snapshot.js'),
  },
  {
    term: 'volume',
    description: 'named volumes of the project: ls, inspect, rm (they outlive VMs)',
    load: () => import('./commands/volume.js'),
  },
  {
    term: 'run [args...]',
    description:
      'start an ad-hoc VM without a project file: tend run IMAGE [--cpus N] [--memory M] [-p PORT] [-v VOL] [--pkg P] [--runcmd C] [--name N] [--rm] [--no-warm] [-- CMD]',
    load: () => import('./commands/run.js'),
  },
  {
    term: 'create [options]',
    description: "vmctl's create: prepare an ad-hoc VM (a run project) without starting it; tend start NAME starts it",
    load: () => import('./commands/create.js'),
  },
  {
    term: 'completion <shell>',
    description: 'print a shell completion script: tend completion bash|zsh|fish (commands, options, VM and image names)',
    load: () => import('./commands/completion.js'),
  },
  {
    term: 'import [options] [domains...]',
    description: 'write a tend.yaml from libvirt domains (--xml FILE, domain names or --all), warning about every part it cannot map',
    load: () => import('./commands/import.js'),
  },
];

/** "converge|up [options]" → ["converge", "up"] */
export const namesOf = (term: string): string[] => term.split(' ')[0].split('|');

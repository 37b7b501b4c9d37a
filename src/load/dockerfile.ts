/**
 * holos' `dockerfile:`: a Dockerfile read as first-boot provisioning of a VM, mapped onto tend's
 * cached provision steps so that it behaves like Docker's layer cache: each instruction that does
 * something in the guest is one step, ENV / WORKDIR / USER fold into the steps after them, so a
 * changed `RUN` (or an ENV above it) re-runs from that step on and the steps before it stay done.
 *
 *   FROM image        the VM's image when the service has no `image:` (first stage only)
 *   RUN cmd           shell step: `sudo sh -c cmd` (as root, like Docker), in WORKDIR, with ENV
 *   RUN ["a", "b"]    the exec form, each word quoted (no shell expansion, as in Docker)
 *   COPY src dst      file step per source (relative to the Dockerfile's folder, inside it);
 *                     a relative dst is relative to WORKDIR; dst ending in "/" keeps the name
 *   ENV / WORKDIR     environment and working directory of later RUN steps; WORKDIR also creates it
 *   USER name         later RUN steps run as that user (`sudo -u name`)
 *
 * Anything that has no meaning for a VM (EXPOSE, CMD, HEALTHCHECK, ...) is an error at its line
 * that says what to write in the compose file instead. The parser is dockerfile-ast (line
 * continuations, escape directive, quoting, exec form).
 */
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, posix, relative, resolve } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import type { ProvisionStep } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { shellQuote } from '../ssh/shell-quote.js';

export interface DockerfileStep {
  step: ProvisionStep;
  /** 1-based line of the instruction it comes from */
  line: number;
}

export interface DockerfileResult {
  /** FROM's image reference and where it is written; absent when the file has no FROM */
  from?: { ref: string; line: number; column: number };
  steps: DockerfileStep[];
  diagnostics: Diagnostic[];
}

/** What to write instead of an instruction that has no meaning for a VM. */
const UNSUPPORTED: Record<string, string> = {
  ADD: 'use COPY for local files, and a RUN with curl/tar for downloads and archives',
  ARG: 'write the value itself, or set it with ENV',
  CMD: 'start long-running programs with a systemd unit (installed by RUN/COPY) or cloud_init.runcmd',
  ENTRYPOINT: 'start long-running programs with a systemd unit (installed by RUN/COPY) or cloud_init.runcmd',
  EXPOSE: 'publish ports in the compose file: `ports: ["8080:80"]`',
  HEALTHCHECK: 'declare `healthcheck:` on the service in the compose file',
  VOLUME: 'declare `volumes:` on the service in the compose file',
  STOPSIGNAL: 'a VM is stopped by ACPI powerdown; set `stop_grace_period:` on the service',
  SHELL: 'RUN uses /bin/sh -c, as Docker does by default; call another shell inside RUN',
  ONBUILD: 'a VM is not a base image for later builds; write the instructions themselves',
  LABEL: 'labels have no meaning for a VM; use comments',
  MAINTAINER: 'use a comment',
};

export function parseDockerfile(file: string, text: string): DockerfileResult {
  const contextDir = dirname(file);
  const diagnostics: Diagnostic[] = [];
  const steps: DockerfileStep[] = [];
  const result: DockerfileResult = { steps, diagnostics };
  const envVars: [string, string][] = [];
  let workdir: string | null = null;
  let user: string | null = null;
  let stages = 0;

  const report = (ins: Instruction, message: string, hint?: string): void => {
    const r = ins.getRange().start;
    diagnostics.push({ file, line: r.line + 1, column: r.character + 1, message, ...(hint ? { hint } : {}), severity: 'error' });
  };

  for (const ins of DockerfileParser.parse(text).getInstructions()) {
    const keyword = ins.getKeyword().toUpperCase();
    const line = ins.getRange().start.line + 1;
    const args = ins.getArgumentsContent() ?? '';
    const flags = 'getFlags' in ins && typeof ins.getFlags === 'function' ? (ins.getFlags() as { getName(): string }[]) : [];

    switch (keyword) {
      case 'FROM': {
        stages++;
        if (stages > 1) {
          report(ins, 'a multi-stage Dockerfile (a second FROM) cannot provision one VM', 'keep one stage: the VM is the image FROM names');
          break;
        }
        const ref = ins.getArguments()[0]?.getValue();
        if (!ref) report(ins, 'FROM names no image', 'write `FROM debian:12` or `FROM ./disk.qcow2`');
        else {
          const a = ins.getArguments()[0].getRange().start;
          result.from = { ref, line: a.line + 1, column: a.character + 1 };
        }
        break;
      }
      case 'RUN': {
        const command = runCommand(args);
        if (command === null) {
          report(ins, 'RUN has no command');
          break;
        }
        steps.push({ step: { kind: 'shell', inline: runLines(line, args, command, envVars, workdir, user) }, line });
        break;
      }
      case 'COPY': {
        const bad = flags.find((f) => f.getName() !== 'chown' && f.getName() !== 'chmod');
        if (bad) {
          report(
            ins,
            `COPY --${bad.getName()} is not supported for a VM`,
            bad.getName() === 'from' ? 'a VM has one stage: COPY files from the Dockerfile folder' : undefined,
          );
          break;
        }
        const words = ins.getArguments().map((a) => a.getValue());
        if (words.length < 2) {
          report(ins, 'COPY needs a source and a destination', 'write `COPY site.conf /etc/nginx/conf.d/`');
          break;
        }
        const dest = words[words.length - 1];
        const sources = words.slice(0, -1);
        if (sources.length > 1 && !dest.endsWith('/')) {
          report(ins, `COPY with ${sources.length} sources needs a destination folder ending in "/"`, `write "${dest}/"`);
          break;
        }
        const destAbs = posix.isAbsolute(dest) ? dest : posix.join(workdir ?? '/', dest);
        for (const src of sources) {
          const problem = copySourceProblem(contextDir, src);
          if (problem) {
            report(ins, problem.message, problem.hint);
            continue;
          }
          const destination = dest.endsWith('/') ? posix.join(destAbs, basename(src)) : destAbs;
          steps.push({ step: { kind: 'file', source: resolve(contextDir, src), destination }, line });
        }
        break;
      }
      case 'ENV': {
        const props = 'getProperties' in ins && typeof ins.getProperties === 'function' ? ins.getProperties() : [];
        for (const p of props as { getName(): string; getValue(): string | null }[]) envVars.push([p.getName(), p.getValue() ?? '']);
        break;
      }
      case 'WORKDIR': {
        const dir = ins.getArguments()[0]?.getValue();
        if (!dir) {
          report(ins, 'WORKDIR names no folder');
          break;
        }
        workdir = posix.isAbsolute(dir) ? dir : posix.join(workdir ?? '/', dir);
        // Docker creates the folder; so does this step (owned by USER when one is set)
        const mk = `mkdir -p ${shellQuote(workdir)}`;
        steps.push({ step: { kind: 'shell', inline: [`# Dockerfile:${line} WORKDIR ${dir}`, asUser(user, mk)] }, line });
        break;
      }
      case 'USER': {
        const name = ins.getArguments()[0]?.getValue();
        if (!name) report(ins, 'USER names no user');
        else user = name;
        break;
      }
      default:
        report(
          ins,
          UNSUPPORTED[keyword] ? `Dockerfile ${keyword} cannot apply to a VM` : `unknown Dockerfile instruction ${keyword}`,
          UNSUPPORTED[keyword] ?? 'the instructions that provision a VM are FROM, RUN, COPY, ENV, WORKDIR and USER',
        );
    }
  }
  return result;
}

/** the shell command of a RUN (shell form as written; exec form quoted word by word) */
function runCommand(args: string): string | null {
  const s = args.trim();
  if (s === '') return null;
  if (s.startsWith('[')) {
    try {
      const words = JSON.parse(s) as unknown;
      if (Array.isArray(words) && words.length > 0 && words.every((w) => typeof w === 'string')) return words.map(shellQuote).join(' ');
    } catch {
      // not JSON: Docker runs it as a shell command too
    }
  }
  return s;
}

function asUser(user: string | null, command: string): string {
  return user && user !== 'root' && user !== '0'
    ? `sudo -n -H -u ${shellQuote(user)} sh -c ${shellQuote(command)}`
    : `sudo -n sh -c ${shellQuote(command)}`;
}

/** A RUN step: a comment naming the instruction (shown as the step's label), then the command. */
function runLines(
  line: number,
  args: string,
  command: string,
  env: [string, string][],
  workdir: string | null,
  user: string | null,
): string[] {
  const prelude = [...env.map(([k, v]) => `export ${k}=${shellQuote(v)}`), ...(workdir ? [`cd ${shellQuote(workdir)}`] : [])];
  const body = [...prelude, command].join('\n');
  const label = args.replace(/\s+/g, ' ').trim();
  return [`# Dockerfile:${line} RUN ${label.length > 60 ? `${label.slice(0, 57)}...` : label}`, asUser(user, body)];
}

/** Why a COPY source cannot be used: missing, absolute, or outside the Dockerfile's folder. */
function copySourceProblem(contextDir: string, src: string): { message: string; hint?: string } | null {
  if (isAbsolute(src)) return { message: `COPY source "${src}" is absolute`, hint: 'sources are relative to the Dockerfile folder' };
  if (/^[a-z]+:\/\//i.test(src)) return { message: `COPY source "${src}" is a URL`, hint: 'download it in a RUN step (curl -fLo ...)' };
  const abs = resolve(contextDir, src);
  if (!existsSync(abs)) return { message: `COPY source "${src}" does not exist (looked for ${abs})` };
  const ctx = realpathSync(contextDir);
  const rel = relative(ctx, realpathSync(abs));
  if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
    return { message: `COPY source "${src}" is outside the Dockerfile folder ${ctx}`, hint: 'move it next to the Dockerfile' };
  }
  return null;
}

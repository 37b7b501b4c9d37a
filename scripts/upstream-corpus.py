#!/usr/bin/env python3
"""Regenerate test/fixtures/upstream/ from checkouts of holos and vmctl (vm-manager).

usage: scripts/upstream-corpus.py HOLOS_DIR VMCTL_DIR
Each fixture is one file (plus support files) copied verbatim from the upstream file or from a
code block / Go or Rust raw string in it; `%s` / `%d` placeholders of holos' integration tests are
replaced by what their harness passes (a local image ./base.qcow2, a port). The manifest records
where each came from and what it must mean (test/unit/upstream-corpus.test.ts asserts it).
"""
import json, os, re, sys

HOLOS, VMCTL = sys.argv[1], sys.argv[2]
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'upstream')
SRC = {
    'holos': {'repo': 'zeroecco/holos', 'commit': '38f5a6b94a8e270da2c0b25524882998bd7d4bde'},
    'vmctl': {'repo': 'Toasterson/vm-manager', 'commit': '302f375f197bec0c1b419239217bb8e9e93fb83f'},
}
fixtures = []


def read(base, p):
    with open(os.path.join(base, p)) as f:
        return f.read()


def block(base, path, line, kind):
    """the fenced block (kind='md'), Go raw string or Rust r#"..."# starting at `line` (1-based)"""
    s = read(base, path)
    pats = {'md': r'```(?:ya?ml|kdl)\n(.*?)```', 'go': r'`([^`]*)`', 'rs': r'r#"(.*?)"#'}
    for m in re.finditer(pats[kind], s, re.S):
        if s[: m.start()].count('\n') + 1 == line:
            return m.group(1)
    raise SystemExit(f'no block at {path}:{line}')


def add(tool, fid, text, source, expect, file=None, support=None, **extra):
    file = file or ('holos.yaml' if tool == 'holos' else 'VMFile.kdl')
    d = os.path.join(OUT, tool, fid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, file), 'w') as f:
        f.write(text.lstrip('\n') if extra.pop('lstrip', True) else text)
    for name, content in (support or {}).items():
        os.makedirs(os.path.dirname(os.path.join(d, name)) or d, exist_ok=True)
        with open(os.path.join(d, name), 'w') as f:
            f.write(content)
    fixtures.append({'id': f'{tool}/{fid}', 'tool': tool, 'file': file, 'source': source, 'expect': expect, **extra})


# ---------------------------------------------------------------- holos
H = lambda p: p
ex = lambda p: read(HOLOS, p)
IMG = './base.qcow2'
add('holos', 'examples-holos', ex('examples/holos.yaml'), {'path': 'examples/holos.yaml'}, 'valid',
    stubs=['../output/images/base/holosteric-base.qcow2'],
    vms={'web-0': {'ports': [{'hostPort': 8080, 'guestPort': 80}], 'memory': 512, 'cpus': 1},
         'web-1': {'ports': [{'hostPort': 8081, 'guestPort': 80}]},
         'api': {'ports': [{'hostPort': 3000, 'guestPort': 3000}], 'memory': 768, 'dependsOn': ['db']},
         'db': {'cpus': 2, 'memory': 1024}})
add('holos', 'examples-alpine-nginx', ex('examples/alpine-nginx/holos.yaml'), {'path': 'examples/alpine-nginx/holos.yaml'}, 'valid',
    vms={'web-0': {'image': {'kind': 'catalog'}, 'ports': [{'hostPort': 8080, 'guestPort': 80}]},
         'web-1': {'ports': [{'hostPort': 8081, 'guestPort': 80}]}})
add('holos', 'examples-gpu-passthrough', ex('examples/gpu-passthrough/holos.yaml'), {'path': 'examples/gpu-passthrough/holos.yaml'}, 'valid',
    vms={'ml': {'firmware': 'uefi', 'cpus': 8, 'memory': 16384, 'devices': [{'pci': '01:00.0'}, {'pci': '01:00.1'}]}},
    planNotes={'ml': 'uefi'})
add('holos', 'examples-netboot-xyz', ex('examples/netboot-xyz/holos.yaml'), {'path': 'examples/netboot-xyz/holos.yaml'}, 'valid',
    support={'Dockerfile': ex('examples/netboot-xyz/Dockerfile'), 'index.html': ex('examples/netboot-xyz/index.html')},
    vms={'netboot': {'image': {'kind': 'catalog', 'ref': 'ubuntu:noble'}, 'ports': [{'hostPort': 8080, 'guestPort': 80}],
                     'provisionCount': 5}})

for line, fid, extra in [
    (16, 'docs-compose-hello', {'vms': {'web': {'ports': [{'hostPort': 8080, 'guestPort': 80}]}}}),
    (62, 'docs-compose-grace', {'vms': {'db': {'stopGracePeriod': 60}}}),
    (75, 'docs-compose-volumes', {'volumes': {'pgdata': {'size': 20}, 'snapshots': {'size': 50}}}),
    (104, 'docs-compose-healthcheck', {'stubs': ['postgres-cloud.qcow2', 'api.qcow2'],
                                       'vms': {'db': {'healthcheck': {'retries': 30, 'interval': 2, 'startPeriod': 10, 'timeout': 3}}, 'api': {'dependsOn': ['db']}}}),
    (139, 'docs-compose-gpu', {'vms': {'ml': {'firmware': 'uefi'}}, 'planNotes': {'ml': 'uefi'}}),
    (162, 'docs-compose-images', {'stubs': ['images/db.qcow2'], 'vms': {'web': {'image': {'kind': 'catalog'}}, 'db': {'image': {'kind': 'path', 'format': 'qcow2'}}}}),
    (189, 'docs-compose-dockerfile', {'support': {'Dockerfile': 'FROM ubuntu:noble\nRUN true\n'}, 'supportNote': 'the doc names ./Dockerfile without showing it; a two-line one stands in',
                                      'vms': {'api': {'image': {'kind': 'catalog', 'ref': 'ubuntu:noble'}, 'ports': [{'hostPort': 3000, 'guestPort': 3000}]}}}),
    (212, 'docs-compose-extra-args', {'vms': {'gpu': {'extraArgs': ['-device', 'virtio-gpu-pci', '-display', 'egl-headless']}}}),
]:
    support = extra.pop('support', None)
    add('holos', fid, block(HOLOS, 'docs/compose.md', line, 'md'), {'path': 'docs/compose.md', 'line': line}, 'valid', support=support, **extra)
add('holos', 'docs-index', block(HOLOS, 'docs/index.md', 64, 'md'), {'path': 'docs/index.md', 'line': 64}, 'valid')
add('holos', 'readme', block(HOLOS, 'README.md', 30, 'md'), {'path': 'README.md', 'line': 30}, 'valid')

CT = 'internal/compose/compose_test.go'
add('holos', 'compose-test-testcompose', block(HOLOS, CT, 16, 'go'), {'path': CT, 'line': 16}, 'valid', stubs=['base.qcow2', 'www/'],
    vms={'db': {'disk': 2, 'cpus': 2, 'memory': 1024}, 'web-0': {'ports': [{'hostPort': 8080, 'guestPort': 80}], 'volumes': [{'kind': 'host', 'readOnly': True}]},
         'web-1': {'ports': [{'hostPort': 8081, 'guestPort': 80}]}, 'api': {'ports': [{'hostPort': 3000, 'guestPort': 3000}]}})
add('holos', 'compose-test-healthcheck-list', block(HOLOS, CT, 463, 'go'), {'path': CT, 'line': 463}, 'valid', stubs=['img.qcow2'],
    vms={'api': {'healthcheck': {'test': ['curl', '-f', 'http://localhost:8080/health'], 'interval': 5, 'retries': 4, 'startPeriod': 10, 'timeout': 2}}})
add('holos', 'compose-test-healthcheck-string', block(HOLOS, CT, 501, 'go'), {'path': CT, 'line': 501}, 'valid', stubs=['img.qcow2'],
    vms={'api': {'healthcheck': {'test': ['sh', '-c', 'pg_isready | grep -q accepting']}}})
for line, fid, at in [
    (652, 'negative-memory', 'memory_mb: -1'),
    (660, 'tiny-disk', 'disk_size: 100'),
    (668, 'host-port-out-of-range', '99999:80'),
    (676, 'negative-replicas', 'replicas: -1'),
    (683, 'replicas-above-cap', 'replicas: 100000'),
    (690, 'project-replicas-exceed-subnet', 'replicas: 100'),
    (700, 'port-overflows-across-replicas', '65535:80'),
    (714, 'ports-collide-after-replica-offset', '8081:81'),
    (751, 'healthcheck-typo', 'retriez'),
    (783, 'missing-local-image', './missing.qcow2'),
    (811, 'unknown-top-level', 'servicez'),
    (817, 'unknown-service-field', 'portz'),
    (825, 'unknown-vm-field', 'memry_mb'),
]:
    add('holos', 'compose-test-' + fid, block(HOLOS, CT, line, 'go'), {'path': CT, 'line': line}, 'invalid', errorAt=at,
        stubs=[] if fid == 'missing-local-image' else ['base.qcow2', 'img.qcow2'])

IT = 'test/integration/'
def it(path, line):
    return block(HOLOS, IT + path, line, 'go').replace('%s', IMG)
add('holos', 'it-dockerfile', it('dockerfile_test.go', 32), {'path': IT + 'dockerfile_test.go', 'line': 32}, 'valid', stubs=['from.qcow2'],
    support={'Dockerfile': 'FROM ./from.qcow2\nENV FOO=bar\nRUN echo hello > /tmp/hi\nCOPY site.conf /etc/nginx/conf.d/site.conf\nWORKDIR /srv\n',
             'site.conf': 'server { listen 80; }\n'},
    vms={'app': {'image': {'kind': 'path'}, 'provisionCount': 3}})
add('holos', 'it-dockerfile-missing-copy', it('dockerfile_test.go', 59), {'path': IT + 'dockerfile_test.go', 'line': 59}, 'invalid', stubs=['from.qcow2'],
    support={'Dockerfile': 'FROM ./from.qcow2\nCOPY missing.txt /opt/missing.txt\n'}, errorFile='Dockerfile', errorAt='COPY missing.txt')
add('holos', 'it-mounts', it('features_test.go', 24), {'path': IT + 'features_test.go', 'line': 24}, 'valid', stubs=['base.qcow2', 'www/'],
    vms={'web': {'volumes': [{'kind': 'host', 'target': '/srv/www', 'readOnly': True}]}})
add('holos', 'it-extra-args', it('features_test.go', 54), {'path': IT + 'features_test.go', 'line': 54}, 'valid', stubs=['base.qcow2'],
    vms={'x': {'extraArgs': ['-object', 'memory-backend-file,id=mb1,size=256M,mem-path=/tmp/holos-test']}})
add('holos', 'it-uefi-devices', it('features_test.go', 85), {'path': IT + 'features_test.go', 'line': 85}, 'valid', stubs=['base.qcow2'],
    vms={'gpu': {'firmware': 'uefi', 'devices': [{'pci': '0000:01:00.0'}]}}, planNotes={'gpu': 'uefi'})
add('holos', 'it-net', it('features_test.go', 132), {'path': IT + 'features_test.go', 'line': 132}, 'valid', stubs=['base.qcow2'],
    vms={'worker': {'dependsOn': ['api']}})
add('holos', 'it-health', it('health_test.go', 24), {'path': IT + 'health_test.go', 'line': 24}, 'valid', stubs=['base.qcow2'],
    vms={'db': {'healthcheck': {'test': ['pg_isready'], 'interval': 2, 'retries': 5, 'startPeriod': 1, 'timeout': 3}}})
add('holos', 'it-health-bypass', it('health_test.go', 109), {'path': IT + 'health_test.go', 'line': 109}, 'valid', stubs=['base.qcow2'])
add('holos', 'it-lifecycle', it('lifecycle_test.go', 72), {'path': IT + 'lifecycle_test.go', 'line': 72}, 'valid', stubs=['base.qcow2'],
    vms={'db': {'memory': 256}, 'web-0': {'ports': [{'hostPort': None, 'guestPort': 80}]}, 'web-1': {'ports': [{'hostPort': None, 'guestPort': 80}]}})
add('holos', 'it-idem', it('lifecycle_test.go', 198), {'path': IT + 'lifecycle_test.go', 'line': 198}, 'valid', stubs=['base.qcow2'])
add('holos', 'it-mutate', it('lifecycle_test.go', 230), {'path': IT + 'lifecycle_test.go', 'line': 230}, 'valid', stubs=['base.qcow2'], vms={'svc': {'memory': 256}})
add('holos', 'it-port-conflict', it('lifecycle_test.go', 269).replace('%d', '18080'), {'path': IT + 'lifecycle_test.go', 'line': 269}, 'valid', stubs=['base.qcow2'],
    vms={'web': {'ports': [{'hostPort': 18080, 'guestPort': 80}]}})
add('holos', 'it-ports-ephemeral', it('ports_test.go', 40), {'path': IT + 'ports_test.go', 'line': 40}, 'valid', stubs=['base.qcow2'],
    vms={'web': {'ports': [{'hostPort': None, 'guestPort': 80}]}})
add('holos', 'it-graceful', it('shutdown_test.go', 22), {'path': IT + 'shutdown_test.go', 'line': 22}, 'valid', stubs=['base.qcow2'],
    vms={'svc-0': {'stopGracePeriod': 5}, 'svc-1': {'stopGracePeriod': 5}})
add('holos', 'it-stopqmp', it('shutdown_test.go', 61), {'path': IT + 'shutdown_test.go', 'line': 61}, 'valid', stubs=['base.qcow2'])
add('holos', 'it-grace', it('shutdown_test.go', 90), {'path': IT + 'shutdown_test.go', 'line': 90}, 'valid', stubs=['base.qcow2'], vms={'svc': {'stopGracePeriod': 45}})
add('holos', 'it-bad-grace', it('shutdown_test.go', 120), {'path': IT + 'shutdown_test.go', 'line': 120}, 'invalid', stubs=['base.qcow2'], errorAt='forever')
add('holos', 'it-validate-one', it('validate_test.go', 19), {'path': IT + 'validate_test.go', 'line': 19}, 'valid', stubs=['base.qcow2'],
    vms={'web': {'ports': [{'hostPort': 8080, 'guestPort': 80}]}})
add('holos', 'it-validate-stack', it('validate_test.go', 54), {'path': IT + 'validate_test.go', 'line': 54}, 'valid', stubs=['base.qcow2'],
    vms={'web-0': {'ports': [{'hostPort': 8080, 'guestPort': 80}], 'dependsOn': ['api']}, 'web-1': {'ports': [{'hostPort': 8081, 'guestPort': 80}]},
         'api': {'dependsOn': ['db']}, 'db': {'cpus': 2, 'memory': 1024}})
add('holos', 'it-validate-cycle', it('validate_test.go', 92), {'path': IT + 'validate_test.go', 'line': 92}, 'invalid', stubs=['base.qcow2'], errorAt='depends_on: [', occurrence=2)
add('holos', 'it-validate-bad-name', it('validate_test.go', 117), {'path': IT + 'validate_test.go', 'line': 117}, 'invalid', stubs=['base.qcow2'], errorAt='BadName')
add('holos', 'it-validate-no-image', it('validate_test.go', 136), {'path': IT + 'validate_test.go', 'line': 136}, 'invalid', errorAt='web:')
add('holos', 'it-validate-udp', it('validate_test.go', 157), {'path': IT + 'validate_test.go', 'line': 157}, 'invalid', stubs=['base.qcow2'], errorAt='53:53/udp')
add('holos', 'it-volumes', it('volumes_test.go', 24), {'path': IT + 'volumes_test.go', 'line': 24}, 'valid', stubs=['base.qcow2'],
    volumes={'data': {'size': 2}}, vms={'db': {'volumes': [{'kind': 'named', 'name': 'data', 'target': '/var/lib/postgres'}]}})
add('holos', 'it-volumes-default-size', it('volumes_test.go', 99), {'path': IT + 'volumes_test.go', 'line': 99}, 'valid', stubs=['base.qcow2'],
    vms={'web': {'volumes': [{'kind': 'named', 'name': 'cache', 'target': '/var/cache'}]}})
add('holos', 'it-volumes-undeclared', it('volumes_test.go', 144), {'path': IT + 'volumes_test.go', 'line': 144}, 'invalid', stubs=['base.qcow2'], errorAt='data:/mnt')

# ---------------------------------------------------------------- vmctl
V = lambda p: read(VMCTL, p)
KEYS = {'home': True}
add('vmctl', 'repo-vmfile', V('VMFile.kdl'), {'path': 'VMFile.kdl'}, 'valid',
    support={'scripts/bootstrap-omnios.sh': V('scripts/bootstrap-omnios.sh'), 'scripts/install-forger.sh': V('scripts/install-forger.sh')},
    stubs=['scripts/forger-src.tar.gz'], supportNote='scripts/forger-src.tar.gz is made by scripts/pack-forger.sh before vmctl up',
    vms={'omnios-builder': {'image': {'kind': 'url'}, 'cpus': 4, 'memory': 4096, 'disk': 20, 'ssh': {'user': 'smithy'}, 'provisionCount': 3}})
BOOK = 'docs/src/'
for path, line, fid, extra in [
    ('introduction.md', 22, 'book-introduction', {'vms': {'dev': {'cpus': 2, 'memory': 2048}}}),
    ('tutorials/omnios-builder.md', 14, 'book-omnios-builder', {'stubs': ['scripts/bootstrap-omnios.sh', 'scripts/forger-src.tar.gz', 'scripts/install-forger.sh'],
                                                               'vms': {'omnios-builder': {'disk': 20, 'provisionCount': 3}}}),
    ('tutorials/provisioning.md', 51, 'book-provisioning', {'stubs': ['src.tar.gz'], 'vms': {'builder': {'provisionCount': 3}}}),
    ('tutorials/declarative-workflow.md', 9, 'book-declarative', {'vms': {'webserver': {'disk': 20, 'provisionCount': 2}}}),
    ('concepts/imperative-vs-declarative.md', 25, 'book-imperative-vs-declarative', {'vms': {'myvm': {'image': {'kind': 'url', 'ref': 'https://example.com/image.img'}}}}),
    ('getting-started/quick-start.md', 34, 'book-quick-start', {'vms': {'demo': {'ssh': {'user': 'ubuntu'}}}}),
    ('vmfile/full-example.md', 5, 'book-full-example', {**KEYS, 'stubs': ['config/bashrc', 'scripts/setup-dev-tools.sh', '~/images/debian-12-generic-amd64.qcow2'],
                                                      'vms': {'full-example': {'disk': 40, 'network': {'mode': 'user'}, 'provisionCount': 3},
                                                              'tap-example': {'network': {'mode': 'tap', 'bridge': 'br0'}, 'ssh': {'user': 'debian'}},
                                                              'minimal': {'cpus': 1, 'memory': 1024}}}),
    ('vmfile/vm-block.md', 17, 'book-vm-block', {'vms': {'dev-server': {'disk': 20}}}),
    ('vmfile/multi-vm.md', 7, 'book-multi-vm', {'vms': {'web': {'memory': 2048}, 'db': {'memory': 4096, 'disk': 50}}}),
    ('advanced/tap-networking.md', 50, 'book-tap-networking', {'stubs': ['image.qcow2'], 'vms': {'myvm': {'network': {'mode': 'tap', 'bridge': 'br0'}}}}),
    ('advanced/custom-cloud-init.md', 7, 'book-custom-cloud-init', {'support': {'cloud-config.yaml': '#cloud-config\npackages: [nginx]\n'},
                                                                    'supportNote': 'the book shows cloud-config.yaml separately; a small one stands in',
                                                                    'vms': {'custom': {}}}),
]:
    support = extra.pop('support', None)
    add('vmctl', fid, block(VMCTL, BOOK + path, line, 'md'), {'path': BOOK + path, 'line': line}, 'valid', support=support, **extra)

# book fragments: the node shown, inside the smallest VM around it
def frag(path, line, fid, extra, wrap_image='image-url "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"'):
    body = block(VMCTL, BOOK + path, line, 'md')
    text = 'vm "frag" {\n    ' + wrap_image + '\n' + ''.join('    ' + l + '\n' if l else '\n' for l in body.rstrip('\n').split('\n')) + '}\n'
    support = extra.pop('support', None)
    add('vmctl', fid, text, {'path': BOOK + path, 'line': line, 'wrapped': 'fragment placed inside vm "frag" { image-url ... }'}, extra.pop('expect', 'valid'),
        support=support, lstrip=False, **extra)
frag('tutorials/provisioning.md', 11, 'frag-provision-inline', {'vms': {'frag': {'provisionCount': 1}}})
frag('tutorials/provisioning.md', 21, 'frag-provision-script', {'stubs': ['scripts/setup.sh'], 'vms': {'frag': {'provisionCount': 1}}})
frag('tutorials/provisioning.md', 33, 'frag-provision-file', {'stubs': ['config/nginx.conf'], 'vms': {'frag': {'provisionCount': 1}}})
frag('vmfile/provision.md', 9, 'frag-vmfile-provision-inline', {'vms': {'frag': {'provisionCount': 1}}})
frag('vmfile/provision.md', 19, 'frag-vmfile-provision-script', {'stubs': ['scripts/setup.sh'], 'vms': {'frag': {'provisionCount': 1}}})
frag('vmfile/provision.md', 33, 'frag-vmfile-provision-file', {'stubs': ['config/app.conf'], 'vms': {'frag': {'provisionCount': 1}}})
frag('vmfile/network.md', 19, 'frag-network-user', {'vms': {'frag': {'network': {'mode': 'user'}}}})
frag('vmfile/network.md', 41, 'frag-network-none', {'vms': {'frag': {'network': {'mode': 'none'}}}})
frag('concepts/networking.md', 24, 'frag-network-tap-child', {'vms': {'frag': {'network': {'mode': 'tap', 'bridge': 'br0'}}}})
frag('concepts/cloud-init-ssh.md', 13, 'frag-cloud-init-hostname', {'vms': {'frag': {'ssh': {'user': 'ubuntu'}}}})
frag('concepts/cloud-init-ssh.md', 33, 'frag-cloud-init-ssh-key', {**KEYS, 'vms': {'frag': {'ssh': {'user': 'ubuntu'}}}})
frag('concepts/cloud-init-ssh.md', 48, 'frag-cloud-init-user-data', {'support': {'my-cloud-config.yaml': '#cloud-config\nruncmd: [true]\n'}, 'vms': {'frag': {}}})
frag('vmfile/ssh.md', 7, 'frag-ssh', {**KEYS, 'vms': {'frag': {'ssh': {'user': 'ubuntu'}}}})
frag('vmfile/cloud-init.md', 7, 'frag-cloud-init-all', {**KEYS, 'support': {'path/to/cloud-config.yaml': '#cloud-config\n'}, 'expect': 'invalid', 'errorAt': 'user-data',
     'why': 'vmctl silently drops ssh-key when user-data is given (the page says so); tend refuses the pair at the user-data line, as its YAML dialect does'})
frag('vmfile/image-sources.md', 17, 'frag-image-url', {'vms': {'frag': {'image': {'kind': 'url', 'ref': 'https://example.com/image.qcow2'}}}}, wrap_image='// image from the fragment')
frag('vmfile/image-sources.md', 7, 'frag-image-path', {'stubs': ['path/to/image.qcow2'], 'vms': {'frag': {'image': {'kind': 'path'}}}}, wrap_image='// image from the fragment')
frag('vmfile/resources.md', 27, 'frag-disk', {'vms': {'frag': {'disk': 20}}})
frag('concepts/networking.md', 44, 'frag-network-vnic', {'expect': 'invalid', 'errorAt': 'network "vnic"',
     'why': 'vnic is an illumos (Propolis) network; tend runs QEMU on Linux, so it is refused at its line'})

RS = 'crates/vm-manager/src/vmfile.rs'
def rs(line):
    return block(VMCTL, RS, line, 'rs')
add('vmctl', 'rs-parse-minimal', rs(624), {'path': RS, 'line': 624}, 'valid', rewrite={'"/tmp/test.qcow2"': '"test.qcow2"'}, extraStubs=['test.qcow2'],
    rewriteNote='an absolute path on the author machine; pointed at a stub next to the file', vms={'test': {'cpus': 1, 'memory': 1024, 'disk': None, 'network': {'mode': 'user'}}})
add('vmctl', 'rs-parse-full', rs(648), {'path': RS, 'line': 648}, 'valid', home=True, stubs=['nginx.conf'],
    rewrite={'"/images/ubuntu.qcow2"': '"images/ubuntu.qcow2"'}, rewriteNote='an absolute path on the author machine; pointed at a stub next to the file',
    extraStubs=['images/ubuntu.qcow2'],
    vms={'web': {'cpus': 2, 'memory': 2048, 'disk': 20, 'network': {'mode': 'tap', 'bridge': 'br0'}, 'ssh': {'user': 'admin'}, 'provisionCount': 2}})
add('vmctl', 'rs-parse-multi', rs(704), {'path': RS, 'line': 704}, 'valid', rewrite={'"/img/': '"img/'}, extraStubs=['img/a.qcow2', 'img/b.qcow2'],
    rewriteNote='absolute paths on the author machine; pointed at stubs next to the file', vms={'alpha': {'cpus': 1}, 'beta': {'cpus': 4, 'memory': 4096}})
add('vmctl', 'rs-parse-image-url', rs(727), {'path': RS, 'line': 727}, 'valid', vms={'cloud': {'image': {'kind': 'url', 'ref': 'https://example.com/image.qcow2'}}})
add('vmctl', 'rs-error-no-image', rs(743), {'path': RS, 'line': 743}, 'invalid', errorAt='vm "broken"')
add('vmctl', 'rs-error-no-name', rs(758), {'path': RS, 'line': 758}, 'invalid', errorAt='vm {')
add('vmctl', 'rs-error-duplicate', rs(773), {'path': RS, 'line': 773}, 'invalid', errorAt='vm "dup"', occurrence=2)
add('vmctl', 'rs-parse-oci', rs(791), {'path': RS, 'line': 791}, 'valid',
    vms={'ci': {'image': {'kind': 'url', 'ref': 'oci://ghcr.io/cloudnebulaproject/ubuntu-rust:latest'}}})

with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
    json.dump({'sources': SRC, 'fixtures': fixtures}, f, indent=1)
    f.write('\n')
print(len(fixtures), 'fixtures')

import { doctor } from './src/qemu/doctor.js';
const t=Date.now();
console.log(JSON.stringify(await doctor({ stateRoot: '/proc/tend-cannot-write', env: { PATH: '/nonexistent' } })), Date.now()-t);

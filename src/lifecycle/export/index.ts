export { exportTenant, type ExportTenantOptions, type ExportResult, type TransferProgress } from './tenant-exporter.js';
export { importTenant, type ImportTenantOptions, type ImportResult, type ImportTarget } from './tenant-importer.js';
export { ArchiveError, type ArchiveErrorCode } from './archive-error.js';
export { ARCHIVE_FORMAT, ARCHIVE_VERSION, parseManifest, type ArchiveManifest, type ArchiveTable } from './manifest.js';
export { IdRemap } from './id-remap.js';

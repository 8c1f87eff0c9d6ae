/**
 * Defaults of the DICOM/NIfTI readers. They live in the project's config module (`medical` section) so they are
 * changed and validated in one place; this name stays for the readers and their callers.
 */
import { DEFAULTS } from '../../config/index.ts';
import type { MedicalConfig } from '../../config/index.ts';

export const MEDICAL_DEFAULTS: Readonly<MedicalConfig> = DEFAULTS.medical;

export type MedicalDefaults = MedicalConfig;

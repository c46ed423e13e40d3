"""The synthetic ALMA-like demo archive: sky models, the imaging, the metadata.

The generator is `generator.synthesize_archive`.
"""

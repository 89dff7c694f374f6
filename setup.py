"""lisakit: OpenMMLab-style reasoning segmentation (LISA) on mmengine."""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    """Requirement lines of ``name``, comments dropped, ``-r other.txt`` followed."""
    with open(osp.join(osp.dirname(__file__), name), encoding='utf-8') as f:
        lines = [line.split('#')[0].strip() for line in f]
    out = []
    for line in filter(None, lines):
        out += read_requirements(line[2:].strip()) if line.startswith('-r ') else [line]
    return out


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'lisakit', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='lisakit',
    version=read_version(),
    description='An OpenMMLab-style toolkit for LISA-style reasoning segmentation',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.10',
    install_requires=read_requirements('requirements.txt'),
    extras_require={
        'tests': read_requirements('requirements-tests.txt'),
        'demo': read_requirements('requirements-demo.txt'),
        'tensorboard': read_requirements('requirements-tensorboard.txt'),
    },
    license='Apache-2.0',
    license_files=['LICENSE'],
)

"""The pipeline: sources → scanner → stages, assembled by ``builder`` for every scanning command.

``runner`` runs sources (a thread each, acknowledgement after every stage), ``stages`` holds the
stages that follow detection, ``paths`` plans and reads files and standard input for ``jitsec scan``.
"""
